//! A dropped connection to the server, end to end: the real `tandem-helper` joins through a TCP
//! proxy written here, is allowed to view and control, and the proxy cuts every connection (as
//! a network drop does). The helper connects again with the same token within the server's
//! grace (docs/protocol.md 5.8): control goes on without asking the customer again, the
//! server's frames reach it on the new connection (Carol ends viewing), and its own reach the
//! server (Stop on its terminal ends control on Carol's side). Back after the server's grace,
//! the token is refused and the helper ends, saying why.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use super::*;

/// Forwards TCP connections to `to`, and can cut all of those open now, or drop new ones (a
/// network that is down).
struct Proxy {
    addr: SocketAddr,
    live: Arc<Mutex<Vec<JoinHandle<()>>>>,
    down: Arc<AtomicBool>,
}

impl Proxy {
    async fn start(to: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let live: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let down = Arc::new(AtomicBool::new(false));
        let (kept, is_down) = (live.clone(), down.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if is_down.load(Ordering::SeqCst) {
                    continue;
                }
                let pipe = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(to).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                kept.lock().unwrap().push(pipe);
            }
        });
        Proxy { addr, live, down }
    }

    fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// Drops every connection open now, both ends at once.
    fn cut(&self) {
        for pipe in self.live.lock().unwrap().drain(..) {
            pipe.abort();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_is_made_again_and_the_session_goes_on() {
    let (_x, display) = xvfb();
    let (window, _) = test_window(&display);
    let mut s = session().await;
    let server: SocketAddr = s.base.trim_start_matches("http://").parse().unwrap();
    let proxy = Proxy::start(server).await;
    // Dave's helper reaches the server through the proxy; Carol and Dave's page do not.
    s.base = format!("http://{}", proxy.addr);
    let (mut helper, peer) = viewing(&mut s, &display).await;
    allowed(
        &mut s.csr,
        &mut helper,
        "control_desktop",
        "Carol asks to control your computer",
    )
    .await;

    proxy.cut();
    block_in_place(|| {
        helper.line(|l| l == "note: the connection to the session was lost; connecting again");
        helper.line(|l| l == "note: connected to the session again");
    });

    // Control goes on, not asked again: a click lands in the test window (at 700,100).
    let at = json!([900.0 / 1280.0, 250.0 / 800.0]);
    eventually(
        "the CSR's control channel is open and a picture was sent",
        || peer.last_picture().is_some() && peer.send_control(json!({"t": "move", "at": at})),
    )
    .await;
    assert!(peer.send_control(json!({"t": "down", "at": at, "button": 0})));
    assert!(peer.send_control(json!({"t": "up", "at": at, "button": 0})));
    let press = block_in_place(|| window.event("button_press"));
    let (x, y) = (press["x"].as_i64().unwrap(), press["y"].as_i64().unwrap());
    assert!(
        (x - 200).abs() <= 2 && (y - 150).abs() <= 2,
        "clicked at ({x}, {y})"
    );

    // The server's frames reach the helper on the new connection: Carol ends viewing.
    s.csr
        .send(json!({"type": "stop_activity", "activity": "view_desktop"}))
        .await;
    block_in_place(|| helper.line(|l| l == "your screen is no longer shown"));
    // And the helper's reach the server: Stop on its terminal ends control for Carol.
    helper.type_line("s");
    s.csr.event("activity_stopped", "control_desktop").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn back_after_the_grace_the_helper_is_refused_and_says_why() {
    let (_x, display) = xvfb();
    let mut s = session_with(&[("TANDEM_SESSIONS_RECONNECT_GRACE_SECS", "1")]).await;
    let server: SocketAddr = s.base.trim_start_matches("http://").parse().unwrap();
    let proxy = Proxy::start(server).await;
    s.base = format!("http://{}", proxy.addr);
    let mut helper = join_helper(&s, &display);
    let attached = s.csr.event("computer_attached", "").await;
    let computer = attached["computer"].clone();

    // The network goes down for longer than the server's grace (1 s here).
    proxy.set_down(true);
    proxy.cut();
    block_in_place(|| {
        helper.line(|l| l == "note: the connection to the session was lost; connecting again");
    });
    let left = s
        .csr
        .until(|v| v["type"] == "event" && v["event"]["type"] == "participant_left")
        .await;
    assert_eq!(left["event"]["participant"], computer, "{left}");

    // Back: the server no longer takes the token, and the helper ends, saying so.
    proxy.set_down(false);
    let reason = block_in_place(|| helper.line(|l| l.starts_with("left: ")));
    assert!(
        reason.starts_with("left: the connection to the session was lost: the server refused"),
        "{reason}"
    );
    block_in_place(|| helper.exited("the refused helper"));
}
