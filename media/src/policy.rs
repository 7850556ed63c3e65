//! What the session's rules allow on the media plane right now. The session computes it from its
//! state and hands the whole of it to the worker on every change; the [`Sfu`](crate::sfu::Sfu)
//! enforces it packet by packet, so a client that sends what it may not is simply not heard or
//! seen.

use std::collections::{BTreeMap, BTreeSet};

/// What a video track a participant sends carries; the client says so in its offer.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum TrackPurpose {
    Camera,
    /// A desktop or application share.
    Screen,
}

impl TrackPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Camera => "camera",
            Self::Screen => "screen",
        }
    }
}

/// The data channels the server relays; any other label is ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ChannelKind {
    /// Keyboard and mouse input for the controlled desktop (SPEC D2).
    Control,
    /// Where each participant points on the shared screen (SPEC D12, D13).
    Pointer,
    /// Pen, highlighter, eraser and clear-all strokes (SPEC D12).
    Annotation,
}

impl ChannelKind {
    pub fn from_label(label: &str) -> Option<Self> {
        match label {
            "control" => Some(Self::Control),
            "pointer" => Some(Self::Pointer),
            "annotation" => Some(Self::Annotation),
            _ => None,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Control => "control",
            Self::Pointer => "pointer",
            Self::Annotation => "annotation",
        }
    }
}

/// Why the server did not pass something on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DropReason {
    /// Audio from someone without a microphone (SPEC V3).
    NoMicrophone,
    /// Camera video from someone who may not send it (SPEC VI2).
    NoCameraRight,
    /// Screen video while no sharing activity of that participant runs, nor (for the primary
    /// CSR) a showing one (SPEC D1, D3, S6).
    NotSharing,
    /// Video on a track the client did not say the purpose of.
    Undeclared,
    /// Control input from anyone but the controller, or while control is off (SPEC D2).
    NotInControl,
    /// Pointer or annotation events while nothing is shared (SPEC D12).
    NothingShared,
    /// Video in a codec the receiver's answer did not accept (an SFU does not transcode).
    CodecNotNegotiated,
}

impl DropReason {
    /// Every reason, so each one's counter is there at 0 from the start (docs/metrics.md).
    pub const ALL: [Self; 7] = [
        Self::NoMicrophone,
        Self::NoCameraRight,
        Self::NotSharing,
        Self::Undeclared,
        Self::NotInControl,
        Self::NothingShared,
        Self::CodecNotNegotiated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoMicrophone => "no_microphone",
            Self::NoCameraRight => "no_camera_right",
            Self::NotSharing => "not_sharing",
            Self::Undeclared => "undeclared_track",
            Self::NotInControl => "not_in_control",
            Self::NothingShared => "nothing_shared",
            Self::CodecNotNegotiated => "codec_not_negotiated",
        }
    }
}

/// The primary CSR gives control of their desktop through their own Tandem Helper (SPEC D4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Given<P> {
    /// The primary CSR's computer: its screen goes to everyone else (as the CSR's), and it
    /// takes the customer's control input.
    pub computer: P,
    /// The customer given control.
    pub customer: P,
    /// The customer holds the pointer; false while the CSR took control back.
    pub customer_holds: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaPolicy<P: Ord> {
    /// In the voice call, so they hear its mix (SPEC V2).
    pub voice_members: BTreeSet<P>,
    /// Holding a microphone, so the call hears them (SPEC V3).
    pub speakers: BTreeSet<P>,
    /// May send camera video: the CSR and the primary customer, once started (SPEC VI1, VI2).
    pub cameras: BTreeSet<P>,
    /// Microphone volumes in percent, where not 100 (SPEC V4).
    pub volumes: BTreeMap<P, u16>,
    /// May send a screen or application share: customers whose sharing activity runs (D1, D6).
    pub screens: BTreeSet<P>,
    /// Who sends remote-control input to which customer while control runs (SPEC D2).
    pub control: Option<(P, P)>,
    /// The primary CSR while they show their own desktop or applications (SPEC D3, D7): their
    /// screen tracks, and only then, go to everyone else in the session (D13). Never anyone
    /// else's screen, and never a computer's on their behalf.
    pub showing: Option<P>,
    /// Customers' computers (Tandem Helper), each with its customer (issue 16). A computer is
    /// its customer on the media plane for what the page cannot do: it may send the screen
    /// share while its customer's sharing runs, which receivers see as the customer's, and it
    /// takes the control input meant for its customer (the customer's page then gets none).
    /// The customer's page keeps its own voice and camera; the computer sends neither.
    pub computers: BTreeMap<P, P>,
    /// D4: while the primary CSR gives control of their desktop, their computer's screen is
    /// passed on, and the customer's control input reaches that computer while the customer
    /// holds control, and only then.
    pub given: Option<Given<P>>,
    /// The session is being recorded: what is passed on is also given to the recorder (R1).
    pub recording: bool,
}

impl<P: Ord> Default for MediaPolicy<P> {
    fn default() -> Self {
        Self {
            voice_members: BTreeSet::new(),
            speakers: BTreeSet::new(),
            cameras: BTreeSet::new(),
            volumes: BTreeMap::new(),
            screens: BTreeSet::new(),
            control: None,
            showing: None,
            computers: BTreeMap::new(),
            given: None,
            recording: false,
        }
    }
}

impl<P: Ord + Copy> MediaPolicy<P> {
    /// Whether video `origin` sends on a track of `purpose` is passed on.
    pub fn video(&self, origin: P, purpose: Option<TrackPurpose>) -> Result<(), DropReason> {
        match purpose {
            None => Err(DropReason::Undeclared),
            Some(TrackPurpose::Camera) if self.cameras.contains(&origin) => Ok(()),
            Some(TrackPurpose::Camera) => Err(DropReason::NoCameraRight),
            Some(TrackPurpose::Screen) if self.screens.contains(&self.identity(origin)) => Ok(()),
            Some(TrackPurpose::Screen) if self.showing == Some(origin) => Ok(()),
            Some(TrackPurpose::Screen) if self.given.is_some_and(|g| g.computer == origin) => {
                Ok(())
            }
            Some(TrackPurpose::Screen) => Err(DropReason::NotSharing),
        }
    }

    /// Whom `peer` is on the media plane: its customer for a computer, else itself. Receivers
    /// are told a computer's share is its customer's.
    pub fn identity(&self, peer: P) -> P {
        self.computers.get(&peer).copied().unwrap_or(peer)
    }

    /// Where control input for `customer` goes: their computer if one is attached.
    fn control_target(&self, customer: P) -> P {
        self.computers
            .iter()
            .find(|(_, c)| **c == customer)
            .map_or(customer, |(computer, _)| *computer)
    }

    /// Who a message `from` sends on a `kind` channel goes to, out of `present`. Everyone sees
    /// what is shared (SPEC D13), so pointer and annotations go to all others while a share runs;
    /// control input goes only from the controller to the controlled customer. The one message
    /// the other way is the controlled customer's computer answering the controller's
    /// `clipboard_get` ([`is_clipboard_reply`]): from that computer (never the customer's page),
    /// to the controller alone, while control runs, and no other message.
    pub fn channel_targets(
        &self,
        kind: ChannelKind,
        from: P,
        data: &[u8],
        present: impl Iterator<Item = P>,
    ) -> Result<Vec<P>, DropReason> {
        match kind {
            ChannelKind::Control => match (self.control, self.given) {
                (Some((controller, target)), _) if controller == from => {
                    Ok(vec![self.control_target(target)])
                }
                (Some((controller, target)), _)
                    if self.computers.get(&from) == Some(&target) && is_clipboard_reply(data) =>
                {
                    Ok(vec![controller])
                }
                (_, Some(g)) if g.customer == from && g.customer_holds => Ok(vec![g.computer]),
                _ => Err(DropReason::NotInControl),
            },
            ChannelKind::Pointer | ChannelKind::Annotation => {
                if self.screens.is_empty() && self.showing.is_none() && self.given.is_none() {
                    return Err(DropReason::NothingShared);
                }
                Ok(present.filter(|p| *p != from).collect())
            }
        }
    }
}

/// Whether a control-channel message is Tandem Helper's clipboard answer: it begins exactly
/// `{"t":"clipboard"` (the helper writes it so: helper/src/control.rs `ClipboardReply`), so the
/// SFU tells it apart without parsing the text it carries.
pub fn is_clipboard_reply(data: &[u8]) -> bool {
    data.starts_with(br#"{"t":"clipboard""#) && matches!(data.get(16), Some(b',' | b'}'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> MediaPolicy<u8> {
        MediaPolicy {
            cameras: [1, 2].into(),
            screens: [2].into(),
            control: Some((1, 2)),
            ..MediaPolicy::default()
        }
    }

    #[test]
    fn video_passes_only_for_the_right_purpose() {
        let p = policy();
        assert_eq!(p.video(1, Some(TrackPurpose::Camera)), Ok(()));
        // VI2: a third participant's camera is not forwarded.
        assert_eq!(
            p.video(3, Some(TrackPurpose::Camera)),
            Err(DropReason::NoCameraRight)
        );
        assert_eq!(p.video(2, Some(TrackPurpose::Screen)), Ok(()));
        // The CSR has no sharing activity of their own running.
        assert_eq!(
            p.video(1, Some(TrackPurpose::Screen)),
            Err(DropReason::NotSharing)
        );
        assert_eq!(p.video(1, None), Err(DropReason::Undeclared));
    }

    #[test]
    fn control_input_goes_from_the_controller_to_the_controlled_only() {
        let p = policy();
        let present = || [1u8, 2, 3].into_iter();
        assert_eq!(
            p.channel_targets(ChannelKind::Control, 1, b"{}", present()),
            Ok(vec![2])
        );
        assert_eq!(
            p.channel_targets(ChannelKind::Control, 3, b"{}", present()),
            Err(DropReason::NotInControl)
        );
        let off = MediaPolicy {
            control: None,
            ..policy()
        };
        assert_eq!(
            off.channel_targets(ChannelKind::Control, 1, b"{}", present()),
            Err(DropReason::NotInControl)
        );
    }

    #[test]
    fn a_computer_shares_and_is_controlled_for_its_customer() {
        // 4 is customer 2's computer; 5 is a computer of customer 3, who shares nothing.
        let p = MediaPolicy {
            computers: [(4, 2), (5, 3)].into(),
            ..policy()
        };
        assert_eq!(p.identity(4), 2);
        assert_eq!(p.identity(1), 1);
        assert_eq!(p.video(4, Some(TrackPurpose::Screen)), Ok(()));
        assert_eq!(
            p.video(5, Some(TrackPurpose::Screen)),
            Err(DropReason::NotSharing)
        );
        // A computer sends no camera video: that is the page's.
        assert_eq!(
            p.video(4, Some(TrackPurpose::Camera)),
            Err(DropReason::NoCameraRight)
        );
        let present = || [1u8, 2, 3, 4, 5].into_iter();
        assert_eq!(
            p.channel_targets(ChannelKind::Control, 1, b"{}", present()),
            Ok(vec![4]),
            "control input for 2 goes to 2's computer, not 2's page"
        );
        assert_eq!(
            p.channel_targets(ChannelKind::Control, 3, b"{}", present()),
            Err(DropReason::NotInControl)
        );
    }

    #[test]
    fn the_csrs_screen_passes_only_while_they_show_it() {
        // 1 is the primary CSR, 2 a customer sharing nothing, 4 customer 2's computer.
        let quiet = MediaPolicy {
            screens: BTreeSet::new(),
            computers: [(4, 2)].into(),
            ..policy()
        };
        assert_eq!(
            quiet.video(1, Some(TrackPurpose::Screen)),
            Err(DropReason::NotSharing)
        );
        let present = || [1u8, 2, 3].into_iter();
        assert_eq!(
            quiet.channel_targets(ChannelKind::Pointer, 2, b"{}", present()),
            Err(DropReason::NothingShared)
        );
        let showing = MediaPolicy {
            showing: Some(1),
            ..quiet
        };
        assert_eq!(showing.video(1, Some(TrackPurpose::Screen)), Ok(()));
        // Showing is the CSR's: the customer, their computer and another CSR gain nothing.
        for other in [2, 3, 4] {
            assert_eq!(
                showing.video(other, Some(TrackPurpose::Screen)),
                Err(DropReason::NotSharing)
            );
        }
        // D12, D13: pointers and annotations on the shown screen reach everyone else.
        assert_eq!(
            showing.channel_targets(ChannelKind::Pointer, 2, b"{}", present()),
            Ok(vec![1, 3])
        );
        // Nor does showing let the CSR's camera through.
        let no_camera = MediaPolicy {
            cameras: BTreeSet::new(),
            ..showing
        };
        assert_eq!(
            no_camera.video(1, Some(TrackPurpose::Camera)),
            Err(DropReason::NoCameraRight)
        );
    }

    #[test]
    fn only_the_controlled_computers_clipboard_answer_goes_back_and_only_to_the_controller() {
        // 1 controls customer 2, whose computer is 4; 5 is customer 3's computer; 6 an assistant.
        let p = MediaPolicy {
            computers: [(4, 2), (5, 3)].into(),
            ..policy()
        };
        let present = || [1u8, 2, 3, 4, 5, 6].into_iter();
        let answer = br#"{"t":"clipboard","text":"copied"}"#;
        let send = |p: &MediaPolicy<u8>, from: u8, data: &[u8]| {
            p.channel_targets(ChannelKind::Control, from, data, present())
        };
        assert_eq!(send(&p, 4, answer), Ok(vec![1]));
        assert_eq!(
            send(&p, 4, br#"{"t":"clipboard","none":"declined"}"#),
            Ok(vec![1])
        );
        // Anything else from the computer, even a control message, goes nowhere.
        assert_eq!(
            send(&p, 4, br#"{"t":"move","at":[0,0]}"#),
            Err(DropReason::NotInControl)
        );
        assert_eq!(
            send(&p, 4, br#"{"t":"clipboard_set","text":"x"}"#),
            Err(DropReason::NotInControl)
        );
        assert_eq!(
            send(&p, 4, br#" {"t":"clipboard"}"#),
            Err(DropReason::NotInControl)
        );
        // Not from the customer's page, another customer's computer, or an assistant.
        for from in [2, 5, 6] {
            assert_eq!(
                send(&p, from, answer),
                Err(DropReason::NotInControl),
                "{from}"
            );
        }
        // Not while control is off.
        let off = MediaPolicy {
            control: None,
            ..p.clone()
        };
        assert_eq!(send(&off, 4, answer), Err(DropReason::NotInControl));
        // A page-only customer (no computer) cannot answer either.
        assert_eq!(send(&policy(), 2, answer), Err(DropReason::NotInControl));
    }

    #[test]
    fn the_customer_given_control_reaches_the_csrs_computer_only_while_holding_it() {
        // 1 the primary CSR, 6 their computer; 2 the customer given control, 3 another
        // customer, 4 customer 2's computer. No control of a customer runs.
        let quiet = MediaPolicy {
            screens: BTreeSet::new(),
            control: None,
            computers: [(4, 2), (6, 1)].into(),
            ..policy()
        };
        let present = || [1u8, 2, 3, 4, 6].into_iter();
        assert_eq!(
            quiet.video(6, Some(TrackPurpose::Screen)),
            Err(DropReason::NotSharing)
        );
        assert_eq!(
            quiet.channel_targets(ChannelKind::Control, 2, b"{}", present()),
            Err(DropReason::NotInControl)
        );
        let given = MediaPolicy {
            given: Some(Given {
                computer: 6,
                customer: 2,
                customer_holds: true,
            }),
            ..quiet.clone()
        };
        assert_eq!(given.video(6, Some(TrackPurpose::Screen)), Ok(()));
        assert_eq!(given.identity(6), 1, "receivers see the CSR's screen");
        assert_eq!(
            given.channel_targets(ChannelKind::Control, 2, b"{}", present()),
            Ok(vec![6])
        );
        // Nobody else's input reaches it: not another customer, not the CSR's console, not a
        // customer's computer.
        for other in [1, 3, 4] {
            assert_eq!(
                given.channel_targets(ChannelKind::Control, other, b"{}", present()),
                Err(DropReason::NotInControl)
            );
        }
        assert_eq!(
            given.channel_targets(ChannelKind::Pointer, 2, b"{}", present()),
            Ok(vec![1, 3, 4, 6])
        );
        let taken_back = MediaPolicy {
            given: Some(Given {
                customer_holds: false,
                ..given.given.unwrap()
            }),
            ..given.clone()
        };
        assert_eq!(
            taken_back.channel_targets(ChannelKind::Control, 2, b"{}", present()),
            Err(DropReason::NotInControl)
        );
        assert_eq!(taken_back.video(6, Some(TrackPurpose::Screen)), Ok(()));
    }

    #[test]
    fn pointer_and_annotations_reach_everyone_else_while_something_is_shared() {
        let p = policy();
        let present = || [1u8, 2, 3].into_iter();
        assert_eq!(
            p.channel_targets(ChannelKind::Annotation, 3, b"{}", present()),
            Ok(vec![1, 2])
        );
        let unshared = MediaPolicy {
            screens: BTreeSet::new(),
            ..policy()
        };
        assert_eq!(
            unshared.channel_targets(ChannelKind::Pointer, 1, b"{}", present()),
            Err(DropReason::NothingShared)
        );
    }
}
