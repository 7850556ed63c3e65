//! Property tests of the session rules: random sequences of joins, commands and disconnections
//! from random participants (most of them not allowed to do what they try) must keep every rule
//! of SPEC S and V3 (and R3 when the session records automatically; D3, D7 for the CSR showing
//! their screen; D4 for giving control of it), never panic, change nothing
//! when refused, and replay to the same state.

use proptest::prelude::*;
use serde_json::Value;
use tandem_actors::ids::{AccountId, ParticipantId, QueueId, SessionId, SessionNumber};
use tandem_actors::protocol::{
    Activity, Command, DisplayMode, Event, ParticipantInfo, Record, Role, StopCause, TransferTarget,
};
use tandem_actors::session::rules::{SessionInit, SessionRules, Status};

const ACTIVITIES: [Activity; 13] = [
    Activity::ViewDesktop,
    Activity::ControlDesktop,
    Activity::ViewApplication,
    Activity::ControlApplication,
    Activity::FileTransfer,
    Activity::Recording,
    Activity::SystemInfo,
    Activity::RunScript,
    Activity::Reboot,
    Activity::LoginAsUser,
    Activity::ShowDesktop,
    Activity::ShowApplications,
    Activity::GiveControl,
];

/// Six people who may take part: 0 is the host, 1-2 CSRs (agents), 3-5 customers.
fn people() -> Vec<ParticipantInfo> {
    (0..6)
        .map(|i| ParticipantInfo {
            id: ParticipantId::random(),
            role: if i < 3 { Role::Csr } else { Role::Customer },
            name: format!("p{i}"),
            email: None,
            account: (i < 3).then(AccountId::random),
            is_agent: i < 3,
            phone: false,
        })
        .collect()
}

#[derive(Clone, Debug)]
enum Step {
    Join(usize),
    Command(usize, Op),
    Disconnect(usize),
    AcceptTransfer(usize),
    /// A customer's (or a CSR's, D4) Tandem Helper pairs and connects as their computer (issue 16).
    PairComputer(usize),
    /// The nth computer ever paired sends a command or goes away.
    ComputerCommand(usize, Op),
    ComputerDisconnect(usize),
    /// The customer asked answers their oldest pending request.
    Answer {
        grant: bool,
        allow_all: bool,
    },
}

#[derive(Clone, Debug)]
enum Op {
    Chat {
        to: Option<usize>,
        long: bool,
    },
    Select(usize),
    Request(usize),
    Reply {
        nth: usize,
        grant: bool,
        allow_all: bool,
    },
    Stop(usize),
    StartVoice,
    EndVoice,
    JoinVoice,
    LeaveVoice,
    Pass(usize),
    Take(usize),
    AskToSpeak(bool),
    Hand(usize),
    Transfer {
        long: bool,
    },
    Notes,
    End {
        confirm: bool,
    },
    Leave,
    Camera(bool),
    DisplayMode(bool),
    /// D4: take the pointer while the primary gives control of their desktop.
    TakeControl,
}

fn op() -> impl Strategy<Value = Op> {
    // Weighted so that sessions get deep (calls with members, pending consents) before anyone
    // ends them.
    prop_oneof![
        1 => (proptest::option::of(0..6usize), any::<bool>()).prop_map(|(to, long)| Op::Chat { to, long }),
        1 => (0..6usize).prop_map(Op::Select),
        3 => (0..13usize).prop_map(Op::Request),
        3 => (0..4usize, any::<bool>(), any::<bool>()).prop_map(|(nth, grant, allow_all)| Op::Reply { nth, grant, allow_all }),
        1 => (0..13usize).prop_map(Op::Stop),
        2 => Just(Op::StartVoice),
        1 => Just(Op::EndVoice),
        3 => Just(Op::JoinVoice),
        1 => Just(Op::LeaveVoice),
        3 => (0..6usize).prop_map(Op::Pass),
        1 => (0..6usize).prop_map(Op::Take),
        2 => any::<bool>().prop_map(Op::AskToSpeak),
        1 => (0..6usize).prop_map(Op::Hand),
        1 => any::<bool>().prop_map(|long| Op::Transfer { long }),
        1 => Just(Op::Notes),
        1 => any::<bool>().prop_map(|confirm| Op::End { confirm }),
        1 => Just(Op::Leave),
        2 => any::<bool>().prop_map(Op::Camera),
        1 => any::<bool>().prop_map(Op::DisplayMode),
        2 => Just(Op::TakeControl),
    ]
}

/// Someone acting: the host half the time (most commands are the primary's).
fn who() -> impl Strategy<Value = usize> {
    prop_oneof![1 => Just(0usize), 1 => 0..6usize]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        1 => (0..6usize).prop_map(Step::Join),
        20 => (who(), op()).prop_map(|(who, op)| Step::Command(who, op)),
        1 => (1..6usize).prop_map(Step::Disconnect),
        1 => (0..6usize).prop_map(Step::AcceptTransfer),
        6 => (any::<bool>(), any::<bool>()).prop_map(|(grant, allow_all)| Step::Answer { grant, allow_all }),
        2 => (0..6usize).prop_map(Step::PairComputer),
        1 => (0..3usize, op()).prop_map(|(n, op)| Step::ComputerCommand(n, op)),
        1 => (0..3usize).prop_map(Step::ComputerDisconnect),
    ]
}

fn command(op: &Op, people: &[ParticipantInfo], rules: &SessionRules, queue: QueueId) -> Command {
    let id = |i: usize| people[i].id;
    match op {
        Op::Chat { to, long } => Command::Chat {
            to: to.map(id),
            text: Some(if *long { "x".repeat(2001) } else { "hi".into() }),
            phrase: None,
        },
        Op::Select(i) => Command::SelectCustomer { customer: id(*i) },
        Op::Request(a) => Command::RequestActivity {
            activity: ACTIVITIES[*a],
        },
        Op::Reply {
            nth,
            grant,
            allow_all,
        } => {
            // Answer a pending request if there is one, else a made-up number.
            let view = rules.view(None, None);
            let request = view["pending_consents"]
                .as_array()
                .and_then(|p| p.get(*nth))
                .and_then(|p| p["request"].as_u64())
                .unwrap_or(999) as u32;
            Command::ConsentReply {
                request,
                grant: *grant,
                allow_all: *allow_all,
                reason: None,
            }
        }
        Op::Stop(a) => Command::StopActivity {
            activity: ACTIVITIES[*a],
        },
        Op::StartVoice => Command::StartVoiceCall,
        Op::EndVoice => Command::EndVoiceCall,
        Op::JoinVoice => Command::JoinVoice,
        Op::LeaveVoice => Command::LeaveVoice,
        Op::Pass(i) => Command::PassMicrophone { to: id(*i) },
        Op::Take(i) => Command::TakeMicrophone { from: id(*i) },
        Op::AskToSpeak(asking) => Command::AskToSpeak { asking: *asking },
        Op::Hand(i) => Command::HandControl { to: id(*i) },
        Op::Transfer { long } => Command::Transfer {
            target: TransferTarget::Queue { queue },
            message: Some("m".repeat(if *long { 346 } else { 345 })),
        },
        Op::Notes => Command::SetNotes {
            text: "notes".into(),
        },
        Op::End { confirm } => Command::EndSession {
            confirm: *confirm,
            notes: None,
        },
        Op::Leave => Command::Leave,
        Op::Camera(true) => Command::StartCamera,
        Op::Camera(false) => Command::StopCamera,
        Op::TakeControl => Command::TakeControl,
        Op::DisplayMode(fast) => Command::SetDisplayMode {
            mode: if *fast {
                DisplayMode::Sampling
            } else {
                DisplayMode::Standard
            },
        },
    }
}

fn ids(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().map(|x| x.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

/// Every rule that must hold in any reachable state.
fn check_invariants(rules: &SessionRules) -> Result<(), TestCaseError> {
    let view = rules.view(None, None);
    let present: Vec<(String, String)> = view["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["id"].as_str().unwrap().to_string(),
                p["role"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let is_present = |id: &str| present.iter().any(|(p, _)| p == id);
    let computers: Vec<(String, String)> = view["participants"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| {
            Some((
                p["id"].as_str()?.to_string(),
                p["computer_of"].as_str()?.to_string(),
            ))
        })
        .collect();
    let is_computer = |id: &str| computers.iter().any(|(c, _)| c == id);
    let is_customer =
        |id: &str| present.iter().any(|(p, r)| p == id && r == "customer") && !is_computer(id);
    // Issue 16: a computer is beside a present customer, or a present CSR (D4), at most one
    // each.
    for (computer, customer) in &computers {
        prop_assert!(
            is_customer(customer) || present.iter().any(|(p, r)| p == customer && r == "csr"),
            "a computer without its owner"
        );
        prop_assert_eq!(
            computers.iter().filter(|(_, c)| c == customer).count(),
            1,
            "two computers for one customer"
        );
        prop_assert!(rules.computer_of(computer.parse().unwrap()).is_some());
    }

    // V3: at most two microphones, held by distinct members of the call who are present.
    let holders = rules.microphone_holders();
    prop_assert!(holders.len() <= 2);
    if holders.len() == 2 {
        prop_assert_ne!(holders[0], holders[1]);
    }
    if let Some(call) = view["voice_call"].as_object() {
        let members = ids(&call["members"]);
        for h in holders {
            prop_assert!(
                members.contains(&h.to_string()),
                "a holder outside the call"
            );
        }
        for m in &members {
            prop_assert!(is_present(m), "a call member who left");
        }
        // Issue 18: only a member without a microphone is asking to speak.
        for a in ids(&call["asking"]) {
            prop_assert!(members.contains(&a), "asking to speak outside the call");
            prop_assert!(
                !holders.iter().any(|h| h.to_string() == a),
                "asking while holding a microphone"
            );
        }
    } else {
        prop_assert!(holders.is_empty());
    }
    // VI2: at most two cameras, the primary CSR's and the selected customer's.
    let cameras = rules.media_policy().cameras;
    prop_assert!(cameras.len() <= 2);
    for c in &cameras {
        prop_assert!(
            Some(*c) == rules.primary() || view["selected_customer"] == c.to_string(),
            "a camera without the right to send"
        );
        // VI1: a customer sends video only while the CSR does.
        prop_assert!(
            Some(*c) == rules.primary() || rules.primary().is_some_and(|p| cameras.contains(&p)),
            "a customer's camera without the CSR's"
        );
    }
    // S9: activities and pending requests concern present customers only.
    for (_, customer) in rules.running_activities() {
        prop_assert!(is_customer(&customer.to_string()));
    }
    for p in view["pending_consents"].as_array().unwrap() {
        prop_assert!(is_customer(p["customer"].as_str().unwrap()));
    }
    // Issue 16 (items 4, 9): control runs only on a customer's computer; a question about the
    // computer is asked in its helper's window while one is attached, and control waits for
    // one while none is.
    let computer_for = |customer: &str| {
        computers
            .iter()
            .find(|(_, c)| c == customer)
            .map(|(c, _)| c.clone())
    };
    for (a, customer) in rules.running_activities() {
        if a.is_control() {
            prop_assert!(
                computer_for(&customer.to_string()).is_some(),
                "control without a computer"
            );
        }
    }
    for p in view["pending_consents"].as_array().unwrap() {
        let activity: Activity = serde_json::from_value(p["activity"].clone()).unwrap();
        let computer = computer_for(p["customer"].as_str().unwrap());
        let asked_of = p["computer"].as_str().map(str::to_string);
        let helper_needed = p["helper_needed"].as_bool().unwrap();
        if activity == Activity::GiveControl {
            // D4: asked of the primary's own helper, nowhere else.
            prop_assert_eq!(
                &asked_of,
                &rules.primary().and_then(|p| computer_for(&p.to_string())),
                "giving control asked elsewhere than the primary's helper"
            );
        } else if activity.is_sharing() {
            prop_assert_eq!(
                &asked_of,
                &computer,
                "a question about the computer asked elsewhere"
            );
        } else {
            prop_assert!(asked_of.is_none());
        }
        prop_assert_eq!(
            helper_needed,
            activity.is_control() && computer.is_none(),
            "control waiting for a helper that is there, or not waiting for one"
        );
    }
    // F3: never file transfer and application sharing on the same customer.
    let running: Vec<_> = rules.running_activities().collect();
    for (a, c) in &running {
        if *a == Activity::FileTransfer {
            prop_assert!(
                !running
                    .iter()
                    .any(|(b, d)| d == c && b.is_application_sharing())
            );
        }
    }
    // D3, D7: the CSR shows one screen at a time, to the selected customer (S6), only while
    // they are primary (S7, S8); the media plane passes the primary's screen then, and only then.
    let csr_screens: Vec<_> = running.iter().filter(|(a, _)| a.is_csr_screen()).collect();
    prop_assert!(
        csr_screens.len() <= 1,
        "two screens shown: {:?}",
        csr_screens
    );
    let showing: Vec<_> = running.iter().filter(|(a, _)| a.is_showing()).collect();
    for (_, customer) in &csr_screens {
        prop_assert!(
            view["selected_customer"] == customer.to_string(),
            "showing to a customer not selected"
        );
    }
    prop_assert_eq!(
        rules.media_policy().showing,
        rules.primary().filter(|_| !showing.is_empty()),
        "the CSR's screen passed without showing, or held back while showing"
    );
    // D4: control input goes from the selected customer to the primary's computer while
    // give_control runs and the customer holds the pointer; else only from the primary to a
    // controlled customer (D2). Nobody else's input goes anywhere.
    let policy = rules.media_policy();
    let given = running.iter().find(|(a, _)| *a == Activity::GiveControl);
    let primary_computer = rules
        .primary()
        .and_then(|p| computer_for(&p.to_string()))
        .map(|c| c.parse::<ParticipantId>().unwrap());
    if let Some((_, customer)) = given {
        prop_assert!(
            primary_computer.is_some(),
            "giving control without the CSR's computer"
        );
        let g = policy
            .given
            .expect("the media plane knows control is given");
        prop_assert_eq!(
            (g.customer, Some(g.computer)),
            (*customer, primary_computer)
        );
        prop_assert_eq!(
            g.customer_holds,
            view["control_holder"] == "customer",
            "the SFU and the rules disagree on who holds control"
        );
    } else {
        prop_assert!(policy.given.is_none());
        prop_assert!(view["control_holder"].is_null());
    }
    let ids_present: Vec<ParticipantId> = present.iter().map(|(p, _)| p.parse().unwrap()).collect();
    for from in &ids_present {
        let Ok(to) = policy.channel_targets(
            tandem_media::policy::ChannelKind::Control,
            *from,
            b"{}",
            ids_present.iter().copied(),
        ) else {
            continue;
        };
        let controls =
            Some(*from) == rules.primary() && running.iter().any(|(a, _)| a.is_control());
        let gives = given.is_some_and(|(_, c)| c == from)
            && view["control_holder"] == "customer"
            && to == vec![primary_computer.unwrap()];
        prop_assert!(controls || gives, "control input from {} to {:?}", from, to);
    }
    // S6: the selected customer is a present customer.
    if let Some(sel) = view["selected_customer"].as_str() {
        prop_assert!(is_customer(sel));
    }
    // S7, S8, S12: one primary, a present CSR, while active; none while waiting; nothing runs
    // once ended.
    match rules.status() {
        Status::Active => {
            let primary = rules.primary().expect("an active session has a primary");
            prop_assert!(
                present
                    .iter()
                    .any(|(p, r)| *p == primary.to_string() && r == "csr")
            );
        }
        Status::Waiting(_) => prop_assert!(rules.primary().is_none()),
        Status::Ended => {
            prop_assert!(running.is_empty());
            prop_assert!(view["voice_call"].is_null());
            prop_assert!(view["pending_consents"].as_array().unwrap().is_empty());
        }
    }
    Ok(())
}

/// SPEC R3. With automatic recording, a customer joining while a CSR is in charge is asked to
/// allow recording at once, and a recording stops only by the customer's leaving or choice, a
/// failure, or the end of the session: never by a CSR. Without it, joining asks nothing.
fn check_automatic_recording(
    automatic: bool,
    step: &Step,
    people: &[ParticipantInfo],
    newcomer: bool,
    records: &[Record],
) -> Result<(), TestCaseError> {
    if let Step::Join(i) = step
        && newcomer
        && people[*i].role == Role::Customer
    {
        let asked = records.iter().any(|r| {
            matches!(r.event, Event::ConsentRequested { activity: Activity::Recording, customer, .. }
                if customer == people[*i].id)
        });
        prop_assert_eq!(asked, automatic, "asked on joining: {:?}", records);
    }
    if !automatic {
        return Ok(());
    }
    let by_customer = matches!(step, Step::Answer { .. })
        || matches!(step, Step::Command(i, _) if people[*i].role == Role::Customer);
    for r in records {
        if let Event::ActivityStopped {
            activity: Activity::Recording,
            cause,
            ..
        } = r.event
        {
            let allowed = match cause {
                StopCause::Stopped => by_customer,
                StopCause::CustomerLeft | StopCause::SessionEnded | StopCause::Failed => true,
                _ => false,
            };
            prop_assert!(
                allowed,
                "an automatic recording stopped by {:?} in {:?}",
                cause,
                step
            );
        }
    }
    Ok(())
}

/// D3, D7: only the primary CSR's own request starts showing their screen; nothing else does
/// (no answer, no join, no computer's command).
fn check_who_shows(
    step: &Step,
    people: &[ParticipantInfo],
    primary_before: Option<ParticipantId>,
    records: &[Record],
) -> Result<(), TestCaseError> {
    for r in records {
        // D4: only the primary's own helper's yes starts giving control.
        if let Event::ActivityStarted {
            activity: Activity::GiveControl,
            ..
        } = r.event
        {
            let by_helper = matches!(
                step,
                Step::Answer { .. } | Step::ComputerCommand(_, Op::Reply { .. })
            );
            prop_assert!(by_helper, "giving control started by {:?}", step);
        }
        if let Event::ActivityStarted { activity, .. } = r.event
            && activity.is_showing()
        {
            let by_primary = matches!(step, Step::Command(i, Op::Request(_))
                if primary_before == Some(people[*i].id));
            prop_assert!(by_primary, "showing started by {:?}", step);
        }
    }
    Ok(())
}

/// SPEC S9 over the whole journal: an activity starts only right after its customer's OK to
/// that very request, or with "allow all" given by that customer since they joined.
fn check_consent_came_first(journal: &[Record]) -> Result<(), TestCaseError> {
    use std::collections::{BTreeMap, BTreeSet};
    let mut requests = BTreeMap::new();
    let mut allowed_all = BTreeSet::new();
    let mut last_grant = None;
    for r in journal {
        match &r.event {
            Event::ConsentRequested {
                request,
                activity,
                customer,
                ..
            } => {
                prop_assert!(!activity.is_showing(), "consent asked for showing: {:?}", r);
                requests.insert(*request, (*activity, *customer));
            }
            Event::ConsentAnswered {
                request,
                granted,
                allow_all,
                ..
            } => {
                let asked = requests.get(request).copied();
                last_grant = granted.then_some(asked).flatten();
                if *allow_all && let Some((_, customer)) = asked {
                    allowed_all.insert(customer);
                }
                continue;
            }
            Event::ActivityStarted {
                activity,
                customer,
                pre_approved,
            } => {
                if activity.is_showing() {
                    // S9 asks nothing for the CSR's own screen; nothing pretends it did.
                    prop_assert!(!*pre_approved, "showing marked pre-approved: {:?}", r);
                } else if *activity == Activity::GiveControl && *pre_approved {
                    prop_assert!(
                        false,
                        "giving control started without the CSR's OK: {:?}",
                        r
                    );
                } else if *pre_approved {
                    prop_assert!(
                        allowed_all.contains(customer),
                        "started without asking: {:?}",
                        r
                    );
                } else {
                    prop_assert_eq!(
                        last_grant,
                        Some((*activity, *customer)),
                        "started without an OK: {:?}",
                        r
                    );
                }
            }
            Event::ParticipantLeft { participant, .. } => {
                allowed_all.remove(participant);
            }
            _ => {}
        }
        last_grant = None;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn random_sessions_keep_every_rule(
        steps in proptest::collection::vec(step(), 1..120),
        automatic_recording in any::<bool>(),
    ) {
        let people = people();
        let init = SessionInit {
            id: SessionId::random(),
            number: SessionNumber::random(),
            topic: "prop".into(),
            host: people[0].account.unwrap(),
            max_customers: 2,
            quick_phrases: None,
            automatic_recording,
        };
        let queue = QueueId::random();
        let (mut rules, mut journal): (SessionRules, Vec<Record>) = SessionRules::create(init.clone(), 0);
        journal.extend(rules.join(0, people[0].clone(), true).unwrap());
        for p in &people[1..5] {
            journal.extend(rules.join(0, p.clone(), false).unwrap());
        }
        let mut now = 0;
        let mut computers: Vec<ParticipantId> = Vec::new();
        let computer = |computers: &[ParticipantId], n: usize| computers.get(n).copied().unwrap_or_else(ParticipantId::random);
        for s in &steps {
            now += 1;
            let before = rules.view(None, None);
            let primary_before = rules.primary();
            // A customer joining anew while a CSR is in charge, for R3.
            let newcomer = match s {
                Step::Join(i) => rules.primary().is_some() && rules.participant(people[*i].id).is_none(),
                _ => false,
            };
            let result = match s {
                Step::Join(i) => rules.join(now, people[*i].clone(), false),
                Step::Command(i, op) => {
                    let cmd = command(op, &people, &rules, queue);
                    rules.handle(now, people[*i].id, cmd)
                }
                Step::Disconnect(i) => Ok(rules.disconnected(now, people[*i].id)),
                Step::AcceptTransfer(i) => rules.accept_transfer(now, people[*i].clone()),
                Step::PairComputer(i) => {
                    let id = ParticipantId::random();
                    match rules.admit_computer(now, people[*i].id, id) {
                        Ok(info) => {
                            prop_assert_eq!(info.name, format!("{}'s computer", people[*i].name));
                            computers.push(id);
                            rules.connect(now, id)
                        }
                        Err(e) => Err(e),
                    }
                }
                Step::ComputerCommand(n, op) => {
                    let cmd = command(op, &people, &rules, queue);
                    rules.handle(now, computer(&computers, *n), cmd)
                }
                Step::ComputerDisconnect(n) => Ok(rules.disconnected(now, computer(&computers, *n))),
                Step::Answer { grant, allow_all } => {
                    let view = rules.view(None, None);
                    match view["pending_consents"].as_array().and_then(|p| p.first()) {
                        Some(p) => {
                            // The one asked: the helper, where the question is in its window.
                            let asked = p["computer"].as_str().or(p["customer"].as_str());
                            let customer: ParticipantId = asked.unwrap().parse().unwrap();
                            let request = p["request"].as_u64().unwrap() as u32;
                            rules.handle(now, customer, Command::ConsentReply { request, grant: *grant, allow_all: *allow_all, reason: None })
                        }
                        None => Ok(Vec::new()),
                    }
                }
            };
            match result {
                Ok(records) => {
                    // What clients are told obeys the rules too (V3).
                    for r in &records {
                        if let Event::MicrophoneHolders { holders } = &r.event {
                            prop_assert!(holders.len() <= 2, "told {} microphone holders", holders.len());
                        }
                    }
                    check_automatic_recording(automatic_recording, s, &people, newcomer, &records)?;
                    check_who_shows(s, &people, primary_before, &records)?;
                    journal.extend(records)
                }
                // A refusal changes nothing.
                Err(_) => prop_assert_eq!(&rules.view(None, None), &before),
            }
            check_invariants(&rules)?;
            // S3: the customer limit holds.
            prop_assert!(rules.customer_count() <= 2);
        }
        check_consent_came_first(&journal)?;
        // The journal is dense and replays to exactly this state.
        for (i, r) in journal.iter().enumerate() {
            prop_assert_eq!(r.seq, i as u64);
        }
        let restored = SessionRules::restore(init, &journal);
        prop_assert_eq!(restored.view(None, None), rules.view(None, None));
        // And every event survives the JSON round trip the journal puts it through.
        for r in &journal {
            let text = serde_json::to_string(r).unwrap();
            prop_assert_eq!(&serde_json::from_str::<Record>(&text).unwrap(), r);
        }
    }
}
