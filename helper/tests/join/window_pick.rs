//! D6 in the helper's window, answered over AT-SPI as a person
//! would: the customer ticks one of two test windows in the pick and presses "Show selected";
//! the CSR decodes only that window, never the other one's colour. (The clipboard question in
//! the window is answered in join.rs's main test.)

use super::apps::{MAGENTA, pixels_of};
use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_customer_ticks_a_window_in_the_helpers_pick_and_only_it_is_shown() {
    let Some(mut desk) = Desktop::start("1280x800") else {
        return;
    };
    let display = desk.display().to_owned();
    // A: the pattern at (700, 100); B: all magenta below it. Both clear of the helper's windows.
    let (_a, _) = test_window(&display);
    let (_b, _) = test_window_with(
        &display,
        &[
            "--title",
            "Window B",
            "--x",
            "700",
            "--y",
            "450",
            "--width",
            "400",
            "--height",
            "300",
            "--colors",
            "ff00ff,ff00ff,ff00ff,ff00ff",
            "--marker",
            "ff00ff",
        ],
    );
    let mut s = session().await;
    let mut helper_cmd = desk.command(env!("CARGO_BIN_EXE_tandem-helper"));
    helper_cmd.args(["join", &s.base, &s.code, "--display", &display]);
    let _helper = Proc::spawn(helper_cmd);
    s.csr.event("computer_attached", "").await;
    let peer = Peer::connect(&mut s.csr).await;

    // The pick takes the question's place: one check button per window, by its title.
    s.csr
        .send(json!({"type": "request_activity", "activity": "view_application"}))
        .await;
    block_in_place(|| {
        desk.find(json!({"role": "label", "name": "Carol asks to see the windows you choose, and nothing else.", "window": MAIN}));
        desk.find(json!({"role": "check box", "name": "Window B", "window": MAIN}));
        desk.gone(json!({"role": "push button", "name": "Allow", "window": MAIN}));
        desk.press(json!({"role": "check box", "name": "Window A", "window": MAIN}));
        desk.click("Show selected", MAIN);
    });
    s.csr.event("activity_started", "view_application").await;
    peer.answer_offer(&mut s.csr).await;
    let pattern = [
        (100, 75, [255, 0, 0]),
        (300, 75, [0, 255, 0]),
        (100, 225, [0, 0, 255]),
        (300, 225, [255, 255, 0]),
    ];
    eventually("the CSR sees window A alone", || {
        peer.last_picture().is_some_and(|p| {
            p.1 == 400 && p.2 == 300 && pattern.iter().all(|(x, y, c)| shows(&p, *x, *y, *c))
        })
    })
    .await;
    for (n, p) in peer.pictures().iter().enumerate() {
        assert_eq!(pixels_of(p, MAGENTA), 0, "picture {n} shows window B");
    }
    block_in_place(|| {
        desk.gone(json!({"role": "check box", "name": "Window A", "window": MAIN}));
        desk.find(json!({"role": "label", "name": "Carol can see the windows you chose.", "window": MAIN}));
    });
}
