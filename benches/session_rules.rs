//! The signalling hot path without IO: how long the session rules take per command.
//! `cargo bench --bench session_rules`

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use tandem_actors::ids::{AccountId, ParticipantId, SessionId, SessionNumber};
use tandem_actors::protocol::{Activity, Command, Event, ParticipantInfo, Role};
use tandem_actors::session::rules::{SessionInit, SessionRules};

fn person(role: Role) -> ParticipantInfo {
    ParticipantInfo {
        id: ParticipantId::random(),
        role,
        name: "someone".into(),
        email: None,
        account: (role == Role::Csr).then(AccountId::random),
        is_agent: false,
        phone: false,
    }
}

fn session(customers: usize) -> (SessionRules, ParticipantId, Vec<ParticipantId>) {
    let init = SessionInit {
        id: SessionId::random(),
        number: SessionNumber::random(),
        topic: "bench".into(),
        host: AccountId::random(),
        max_customers: 100,
        quick_phrases: None,
        automatic_recording: false,
    };
    let (mut rules, _) = SessionRules::create(init, 0);
    let csr = person(Role::Csr);
    let csr_id = csr.id;
    rules.join(0, csr, true).unwrap();
    let ids = (0..customers)
        .map(|_| {
            let p = person(Role::Customer);
            let id = p.id;
            rules.join(0, p, false).unwrap();
            id
        })
        .collect();
    (rules, csr_id, ids)
}

fn bench(c: &mut Criterion) {
    let (rules, _, customers) = session(5);
    c.bench_function("chat to all (5 customers)", |b| {
        b.iter_batched_ref(
            || rules.clone(),
            |r| {
                black_box(
                    r.handle(
                        1,
                        customers[0],
                        Command::Chat {
                            to: None,
                            text: Some("hello there".into()),
                            phrase: None,
                        },
                    )
                    .unwrap(),
                )
            },
            criterion::BatchSize::SmallInput,
        )
    });
    let (rules, csr, customers) = session(1);
    c.bench_function("consent request + grant", |b| {
        b.iter_batched_ref(
            || rules.clone(),
            |r| {
                let recs = r
                    .handle(
                        1,
                        csr,
                        Command::RequestActivity {
                            activity: Activity::ViewDesktop,
                        },
                    )
                    .unwrap();
                let Event::ConsentRequested { request, .. } = recs[0].event else {
                    unreachable!()
                };
                black_box(
                    r.handle(
                        2,
                        customers[0],
                        Command::ConsentReply {
                            request,
                            grant: true,
                            allow_all: false,
                            reason: None,
                        },
                    )
                    .unwrap(),
                )
            },
            criterion::BatchSize::SmallInput,
        )
    });
    // Rebuilding a session from a journal of 1000 events (crash recovery).
    let (mut rules, csr, customers) = session(2);
    let mut journal = Vec::new();
    for i in 0..1000 {
        let from = if i % 2 == 0 { csr } else { customers[0] };
        journal.extend(
            rules
                .handle(
                    i,
                    from,
                    Command::Chat {
                        to: None,
                        text: Some(format!("m{i}")),
                        phrase: None,
                    },
                )
                .unwrap(),
        );
    }
    let init = rules.init().clone();
    c.bench_function("restore from a 1000-event journal", |b| {
        b.iter(|| black_box(SessionRules::restore(init.clone(), &journal)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
