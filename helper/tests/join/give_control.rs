//! D4 clicked through in Debian's Chromium, under Xvfb: Carol (CSR) gives Dave (customer)
//! control of her desktop through her own Tandem Helper. Carol's console
//! (tests/e2e/give_control.mjs) offers the pairing code; the real `tandem-helper join` runs in
//! its window on "Carol's" private desktop, where the test types the code and presses Allow over
//! AT-SPI, as Carol would; Dave's page shows Carol's screen (the test window's colours, read
//! from the video's pixels), and his click and keys on it reach the test window at the point.
//! Carol takes control back by clicking in her console: Dave's keys and the click with which he
//! takes it again reach nothing; his next click lands. Then she takes it back with her helper's
//! "Take control back" button, and his keys reach nothing again. Dave ends it (D5).

use super::*;

const E2E: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/e2e");

/// Waits on a child's output without holding up the runtime's other worker.
fn wait<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// The browser script's next step line (`{"step": name, ...}`); its final report means it gave
/// up.
fn step(node: &Proc, name: &str) -> Value {
    let line = wait(|| {
        node.line(|l| {
            serde_json::from_str::<Value>(l)
                .is_ok_and(|v| v["step"] == name || v.get("failures").is_some())
        })
    });
    let v: Value = serde_json::from_str(&line).expect("json");
    assert!(
        v.get("failures").is_none(),
        "the browser script stopped: {v}"
    );
    v
}

/// The window's next button press, at about window point (x, y).
fn pressed_at(window: &Proc, x: i64, y: i64) {
    let press = wait(|| window.event("button_press"));
    let (px, py) = (press["x"].as_i64().unwrap(), press["y"].as_i64().unwrap());
    assert!(
        (px - x).abs() <= 2 && (py - y).abs() <= 2,
        "clicked at ({px}, {py}), not ({x}, {y})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_customer_controls_the_csrs_window_through_the_csrs_helper_in_chromium() {
    assert!(
        std::path::Path::new("/usr/bin/chromium").exists(),
        "Debian's chromium is needed (./test.sh installs it)"
    );
    assert!(
        std::path::Path::new(E2E)
            .join("node_modules/playwright-core")
            .exists(),
        "run `npm ci` in tests/e2e (./test.sh does)"
    );
    let Some(mut carol) = Desktop::start("1280x800") else {
        return;
    };
    let (mut window, window_id) = test_window(carol.display());
    let dir = tempfile::tempdir().unwrap();
    let server = start_server(dir.path(), &[]).await;
    let base = format!("http://{}", server.addr);

    let mut browser = Command::new("node");
    browser
        .args(["give_control.mjs", &base, "carol", CAROL_PASSWORD])
        .current_dir(E2E);
    let mut node = Proc::spawn(browser);

    // Carol's console gives her a code for her own computer; she starts the helper and types
    // it into its window.
    let code = step(&node, "code");
    let mut helper_cmd = carol.command(env!("CARGO_BIN_EXE_tandem-helper"));
    helper_cmd.args(["join", &base, "--display", carol.display()]);
    let helper = Proc::spawn(helper_cmd);
    let given = "Dave is controlling this computer";
    wait(|| {
        let entry = json!({"role": "text", "name": "Pairing code", "window": MAIN});
        carol.type_into(&entry, code["code"].as_str().unwrap());
        carol.click("Join", MAIN);
        carol.find(json!({"role": "label", "contains": "as Carol's computer.", "window": MAIN}));
        // The console asks as soon as the helper is there; Carol answers in her helper.
        carol.find(json!({"role": "label", "contains": "Give Dave control of this computer?", "window": MAIN}));
        // She is working in her window (the helper's own window took the keyboard when it
        // showed, as it does without a window manager).
        focus(carol.display(), window_id);
        carol.click("Allow", MAIN);
        carol.find(json!({"role": "label", "name": "Dave sees your screen and controls your mouse and keyboard.", "window": MAIN}));
        carol.find(json!({"role": "push button", "name": "Take control back", "window": given}));
    });
    // The indicator showed without taking her keyboard: Dave's keys below reach her window,
    // not its "Take control back" button.

    // Dave saw the pattern, clicked window point (200, 150) and typed "hi".
    step(&node, "clicked");
    pressed_at(&window, 200, 150);
    let h = wait(|| window.event("key_press"));
    let i = wait(|| window.event("key_press"));
    assert_eq!(
        (h["text"].as_str(), i["text"].as_str()),
        (Some("h"), Some("i"))
    );
    node.type_line("ok");

    // Carol took control back by clicking; Dave typed: nothing reached the window (the
    // window's own marker comes first).
    step(&node, "held");
    // Her helper says she has it, and offers no "Take control back".
    let held = "You took control back: Dave can take it by clicking your screen";
    wait(|| {
        carol.find(json!({"role": "frame", "name": held}));
        carol.gone(json!({"role": "push button", "name": "Take control back", "window": held}));
    });
    wait(|| nothing_injected(&mut window, "while Carol held control"));
    node.type_line("ok");

    // Dave clicked to take control (that click reaches nothing), then clicked window point
    // (350, 220): the next press is that one.
    step(&node, "retaken");
    pressed_at(&window, 350, 220);
    // Carol takes it back in her helper this time: its indicator's button.
    wait(|| carol.click("Take control back", given));
    node.type_line("ok");
    step(&node, "held in the helper");
    wait(|| carol.find(json!({"role": "frame", "name": held})));
    wait(|| nothing_injected(&mut window, "after Take control back in the helper"));
    node.type_line("ok");

    // Dave ended it: Carol's helper says nobody sees or controls her computer, and its
    // indicator goes.
    step(&node, "ended");
    wait(|| {
        carol.find(json!({"role": "label", "name": "Nobody can see or control this computer.", "window": MAIN}));
        carol.gone(json!({"role": "frame", "name": held}));
    });
    drop(helper);
    let report = wait(|| node.line(|l| l.contains("\"failures\"")));
    let report: Value = serde_json::from_str(&report).expect("json");
    assert_eq!(report["failures"], json!([]), "{report}");
}
