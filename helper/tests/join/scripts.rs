//! SPEC M3 end to end, under Xvfb with the real server in this process and the real
//! `tandem-helper` answering on its terminal: two scripts from the library run in the order
//! the CSR chose, each in a folder of its own that is gone afterwards, their logs in chat and
//! in the stored report; a no runs nothing; a script changed after the customer's yes is
//! refused by the helper; one that never ends is stopped at the time limit.

use base64::Engine as _;

use super::*;

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

struct Library {
    http: reqwest::Client,
    base: String,
    carol: String,
}

impl Library {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Value,
    ) -> (u16, Value) {
        let r = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    async fn add(&self, category: &str, name: &str, text: &str, input: Option<&str>) -> String {
        let mut body = json!({"name": name, "category": category, "published": true,
            "file": {"name": "run.sh", "content_base64": b64(text)}});
        if let Some(i) = input {
            body["input"] = json!({"name": "input.txt", "content_base64": b64(i)});
        }
        let (status, s) = self
            .call(reqwest::Method::POST, "/api/scripts", &self.carol, body)
            .await;
        assert_eq!(status, 201, "{s}");
        s["id"].as_str().unwrap().to_owned()
    }
}

/// The CSR proposes `scripts`; the helper's terminal shows the question, which is returned.
async fn propose(s: &Session, lib: &Library, helper: &mut Proc, scripts: &[&str]) -> String {
    let path = format!("/api/sessions/{}/script-runs", s.session_id);
    let (status, body) = lib
        .call(
            reqwest::Method::POST,
            &path,
            &s.csr_token,
            json!({ "scripts": scripts }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    helper.line(|l| l.starts_with("question:") && l.contains("asks to run these scripts"))
}

async fn finished(csr: &mut Ws) -> Value {
    csr.event("script_finished", "").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn scripts_run_in_order_after_the_customers_yes_and_leave_nothing_behind() {
    let (_x, display) = xvfb();
    let mut s = session().await;
    let category = s
        ._server
        .store
        .create_script_category("Printing")
        .await
        .unwrap()
        .id
        .to_string();
    let lib = Library {
        http: reqwest::Client::new(),
        base: s.base.clone(),
        carol: s.carol.clone(),
    };
    let report = lib
        .add(
            &category,
            "Report folder",
            "#!/bin/sh\necho \"first in $PWD\"\ncat \"$TANDEM_INPUT\"\n",
            Some("printer=office"),
        )
        .await;
    let hello = lib
        .add(&category, "Say hello", "echo second\nexit 4\n", None)
        .await;
    let forever = lib
        .add(&category, "Never ends", "echo waiting\nsleep 600\n", None)
        .await;
    let changing = lib.add(&category, "Changes", "echo before\n", None).await;

    let mut helper = join_helper_with(&s, &display, &[("TANDEM_HELPER_SCRIPT_SECS", "2".as_ref())]);
    let attached = s.csr.event("computer_attached", "").await;
    assert!(
        attached["abilities"]
            .as_array()
            .unwrap()
            .contains(&json!("run_script")),
        "{attached}"
    );

    // A no: nothing runs.
    propose(&s, &lib, &mut helper, &[&hello]).await;
    helper.type_line("n");
    assert_eq!(s.csr.event("consent_answered", "").await["granted"], false);

    // The chosen order, shown with each script's size and SHA-256, then run in it.
    let q = propose(&s, &lib, &mut helper, &[&hello, &report]).await;
    let (first, second) = (
        q.find("1. Say hello").unwrap(),
        q.find("2. Report folder").unwrap(),
    );
    assert!(first < second, "{q}");
    helper.type_line("y");
    let one = finished(&mut s.csr).await;
    assert_eq!(
        (one["index"].as_u64(), one["name"].as_str()),
        (Some(0), Some("Say hello")),
        "{one}"
    );
    assert_eq!(one["outcome"]["exit_code"], 4);
    assert_eq!(one["outcome"]["output"], "second\n");
    let two = finished(&mut s.csr).await;
    assert_eq!(two["name"], "Report folder");
    let output = two["outcome"]["output"].as_str().unwrap();
    assert!(output.contains("printer=office"), "{output}");
    let folder = output
        .lines()
        .next()
        .unwrap()
        .strip_prefix("first in ")
        .unwrap();
    assert!(folder.contains("tandem-script-"), "{folder}");
    assert!(
        !std::path::Path::new(folder).exists(),
        "{folder} is removed"
    );
    let chat = s
        .csr
        .until(|v| {
            v["type"] == "event"
                && v["event"]["type"] == "chat"
                && v["event"]["text"]
                    .as_str()
                    .unwrap_or("")
                    .contains("Report folder")
        })
        .await;
    assert!(
        chat["event"]["text"]
            .as_str()
            .unwrap()
            .contains("printer=office"),
        "{chat}"
    );
    let stopped = s.csr.event("activity_stopped", "run_script").await;
    assert_eq!(stopped["cause"], "finished");

    // The stored report has both logs, as Dave's computer provided them (RP2).
    let r = lib
        .http
        .get(format!("{}/api/sessions/{}/report", s.base, s.session_id))
        .bearer_auth(&s.carol)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let logs: Vec<&str> = r["script_logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert_eq!(logs, ["Say hello", "Report folder"], "{r}");

    // Changed on the server after the customer's yes: the helper does not run it.
    propose(&s, &lib, &mut helper, &[&changing]).await;
    let path = format!("/api/scripts/{changing}");
    let edit = json!({"name": "Changes", "category": category, "published": true,
        "file": {"name": "run.sh", "content_base64": b64("echo after; touch /tmp/tandem-changed-ran\n")}});
    assert_eq!(
        lib.call(reqwest::Method::PATCH, &path, &s.carol, edit)
            .await
            .0,
        200
    );
    helper.type_line("y");
    let refused = finished(&mut s.csr).await;
    assert!(
        refused["outcome"]["refused"]
            .as_str()
            .unwrap_or("")
            .contains("changed after you allowed it"),
        "{refused}"
    );
    assert!(!std::path::Path::new("/tmp/tandem-changed-ran").exists());

    // Never ends: stopped at the time limit (2 s here), with what it printed.
    let started = Instant::now();
    propose(&s, &lib, &mut helper, &[&forever]).await;
    helper.type_line("y");
    let stopped = finished(&mut s.csr).await;
    assert_eq!(stopped["outcome"]["timed_out"], true, "{stopped}");
    assert_eq!(stopped["outcome"]["output"], "waiting\n");
    assert!(started.elapsed() < Duration::from_secs(30));
}
