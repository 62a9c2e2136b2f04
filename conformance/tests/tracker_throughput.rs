//! Rough throughput check for the simulator's use (run with
//! `cargo test --release -p rtse-conformance --test tracker_throughput -- --ignored --nocapture`).

use rtse_conformance::tracker::*;
use std::time::Instant;

#[test]
#[ignore = "timing; run in release"]
fn throughput() {
    let cycle = [
        (Side::Initiator, TurnEvent::ActivityStart { id: ActivityId::number(1) }),
        (Side::Initiator, TurnEvent::Data { octets: 1024 }),
        (Side::Initiator, TurnEvent::MinorSync { serial: 1, confirm_required: true }),
        (Side::Responder, TurnEvent::MinorSyncAck { serial: 1 }),
        (Side::Initiator, TurnEvent::Data { octets: 100 }),
        (Side::Initiator, TurnEvent::ActivityEnd { serial: 2 }),
        (Side::Responder, TurnEvent::ActivityEndAck { serial: 2 }),
        (Side::Responder, TurnEvent::PleaseTokens { tokens: 1, priority: Some(1) }),
        (Side::Initiator, TurnEvent::GiveControl),
        (Side::Responder, TurnEvent::GiveControlAck),
        (Side::Initiator, TurnEvent::PleaseTokens { tokens: 1, priority: Some(1) }),
        (Side::Responder, TurnEvent::GiveControl),
        (Side::Initiator, TurnEvent::GiveControlAck),
    ];
    let mut t = TurnTracker::default();
    t.observe(&Observed {
        seq: 0,
        time_ns: 0,
        from: Side::Initiator,
        event: TurnEvent::Connect(Box::new(Connect {
            token_setting: Some(0),
            dialogue: Some(Dialogue::Twa),
            ..Connect::default()
        })),
    });
    t.observe(&Observed {
        seq: 1,
        time_ns: 0,
        from: Side::Responder,
        event: TurnEvent::Accept(Accept {
            token_setting: Some(0),
            window_size: Some(3),
            checkpoint_size: Some(1),
            ..Accept::default()
        }),
    });
    let evs: Vec<Observed> = (0..cycle.len() as u64 * 1000)
        .map(|i| {
            let (from, event) = cycle[(i % cycle.len() as u64) as usize].clone();
            Observed { seq: i + 2, time_ns: i * 1000, from, event }
        })
        .collect();
    let start = Instant::now();
    let mut n = 0u64;
    for _ in 0..400 {
        for ev in &evs {
            std::hint::black_box(t.observe(ev));
            n += 1;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    assert!(t.anomalies().is_empty(), "{:?}", &t.anomalies()[..1]);
    println!(
        "{n} events in {secs:.3}s: {:.1} M events/s; {} transfers kept",
        n as f64 / secs / 1e6,
        t.transfers().len()
    );
}
