//! D6 end to end, under Xvfb with the real server in this process: the customer picks one of two
//! test windows in the helper; the CSR decodes only that window's pixels (never the other
//! window's colour, also when the other lies over it), a click lands in the chosen window at the
//! point, and a click outside it injects nothing.

use super::*;

/// Window B's only colour: window A's pattern has none of it.
pub(super) const MAGENTA: [u8; 3] = [255, 0, 255];

/// How many pixels of the picture are (close to) `rgb`.
pub(super) fn pixels_of(picture: &(Vec<u8>, usize, usize), rgb: [u8; 3]) -> usize {
    picture
        .0
        .chunks_exact(3)
        .filter(|px| px.iter().zip(rgb).all(|(a, b)| a.abs_diff(b) < 48))
        .count()
}

/// The window's next line that is a button press or the answer to a `fill` sent after the
/// message under test: a press before the fill's answer was injected.
fn pressed_before_marker(window: &mut Proc) -> Option<String> {
    window.type_line("fill 0 0 1 1 000000");
    let next = window.line(|l| l.contains("\"button_press\"") || l.contains("\"filled\""));
    (!next.contains("filled")).then_some(next)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_customer_picks_a_window_and_only_its_pixels_and_the_clicks_in_it_go_through() {
    let x = xvfb::Xvfb::start("1280x800");
    let display = x.display.clone();
    // A: four quadrants at (100, 100), 400x300. B: all magenta, over A's bottom right quarter.
    let (mut a, _) = test_window_with(
        &display,
        &[
            "--title", "Window A", "--x", "100", "--y", "100", "--width", "400", "--height", "300",
        ],
    );
    let (mut b, _) = test_window_with(
        &display,
        &[
            "--title",
            "Window B",
            "--x",
            "300",
            "--y",
            "200",
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
    let mut helper = join_helper(&s, &display);
    s.csr.event("computer_attached", "").await;
    let peer = Peer::connect(&mut s.csr).await;

    // The helper lists the windows with the question; Dave types A's number.
    s.csr
        .send(json!({"type": "request_activity", "activity": "view_application"}))
        .await;
    let q = helper.line(|l| l.starts_with("question:"));
    assert!(
        q.contains("Carol asks to see the windows you choose"),
        "{q}"
    );
    let mut listed = Vec::new();
    loop {
        let l = helper.line(|_| true);
        if l.starts_with("Type the numbers") {
            break;
        }
        listed.push(l);
    }
    assert!(listed.iter().any(|l| l.contains("Window B")), "{listed:?}");
    let number = listed
        .iter()
        .find(|l| l.contains("Window A"))
        .and_then(|l| l.trim().split('.').next())
        .unwrap_or_else(|| panic!("window A listed: {listed:?}"))
        .to_owned();
    helper.type_line(&number);
    s.csr.event("activity_started", "view_application").await;
    peer.answer_offer(&mut s.csr).await;
    helper.line(|l| l == "your screen is being shown");

    // The picture is window A alone (400x300), its pattern complete where B lies over it.
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
    // A raised, then B raised over it again: the pictures after show A, never B.
    a.type_line("raise");
    a.event("raised");
    b.type_line("raise");
    b.event("raised");
    let seen = peer.pictures().len();
    eventually("more pictures after B was raised", || {
        peer.pictures().len() >= seen + 2
    })
    .await;
    let pictures = peer.pictures();
    for (n, p) in pictures.iter().enumerate() {
        assert_eq!(pixels_of(p, MAGENTA), 0, "picture {n} shows window B");
    }
    let last = pictures.last().expect("pictures");
    assert!(pattern.iter().all(|(x, y, c)| shows(last, *x, *y, *c)));

    // Control of the shared window: a plain question now (the windows are chosen).
    s.csr
        .send(json!({"type": "request_activity", "activity": "control_application"}))
        .await;
    let q = helper.line(|l| l.starts_with("question:"));
    assert!(q.contains("control the windows you share"), "{q}");
    helper.type_line("y");
    s.csr.event("activity_started", "control_application").await;
    // A's (300, 225): on the screen B lies there. The press raises A, and A gets the click.
    let at = json!([300.0 / 400.0, 225.0 / 300.0]);
    eventually("the CSR's control channel is open", || {
        peer.send_control(json!({"t": "move", "at": at}))
    })
    .await;
    assert!(peer.send_control(json!({"t": "down", "at": at, "button": 0})));
    assert!(peer.send_control(json!({"t": "up", "at": at, "button": 0})));
    let press = a.event("button_press");
    let (x, y) = (press["x"].as_i64().unwrap(), press["y"].as_i64().unwrap());
    assert!(
        (x - 300).abs() <= 2 && (y - 225).abs() <= 2,
        "clicked at ({x}, {y})"
    );
    assert_eq!(pressed_before_marker(&mut b), None, "B got a click");

    // A point outside the chosen window's picture injects nothing, in either window.
    peer.send_control(json!({"t": "down", "at": [1.5, 0.5], "button": 0}));
    peer.send_control(json!({"t": "up", "at": [1.5, 0.5], "button": 0}));
    assert_eq!(pressed_before_marker(&mut a), None, "clicked outside A");
    assert_eq!(pressed_before_marker(&mut b), None, "clicked B");
}
