//! A dropped connection to the server, end to end: the real `tandem-helper` joins through a TCP
//! proxy written here, is allowed to view and control, and the proxy cuts every connection (as
//! a network drop does). The helper connects again with the same token within the server's
//! grace (docs/protocol.md 5.8): control goes on without asking the customer again, the
//! server's frames reach it on the new connection (Carol ends viewing), and its own reach the
//! server (Stop on its terminal ends control on Carol's side).

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use super::*;

/// Forwards TCP connections to `to`, and can cut all of those open now.
struct Proxy {
    addr: SocketAddr,
    live: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(to: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let live: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let kept = live.clone();
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let pipe = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(to).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                kept.lock().unwrap().push(pipe);
            }
        });
        Proxy { addr, live }
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
