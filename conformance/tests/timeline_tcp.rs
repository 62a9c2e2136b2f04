//! Degenerate TCP under the same conversations: one byte per segment,
//! reordered, duplicated and overlapping segments give the same timeline; a
//! lost segment gives a `T-GAP` row with the holder unknown, and a capture
//! that starts mid-stream infers the holder from behaviour.

mod timeline_support;

use rtse_codec::capture::write::Frame;
use rtse_conformance::synth::scenario::{self, Place};
use rtse_conformance::synth::{frames, Conversation, Pdus};
use rtse_conformance::tracker::TurnHolder;
use timeline_support::{is_data, kinds, rows, run_convs, run_frames, shape, tcp_info};

fn cases() -> Vec<(&'static str, Vec<Conversation>)> {
    let p = Place::default();
    vec![
        ("field-failure", scenario::field_failure(&p, Pdus::normal(), true, 0x15)),
        ("clean-twa", scenario::clean_twa(&p, Pdus::x410())),
        ("duplicated-transfer", scenario::duplicated_transfer(&p, Pdus::normal())),
    ]
}

fn with(convs: &[Conversation], f: impl Fn(&mut Conversation)) -> Vec<Conversation> {
    convs
        .iter()
        .cloned()
        .map(|mut c| {
            f(&mut c);
            c
        })
        .collect()
}

/// All frames, each conversation's frames changed by `f`, merged by time.
fn mangled(convs: &[Conversation], f: impl Fn(Vec<Frame>) -> Vec<Frame>) -> Vec<Frame> {
    let mut all: Vec<Frame> = convs.iter().flat_map(|c| f(frames(c))).collect();
    all.sort_by_key(|f| f.time);
    all
}

#[test]
fn one_byte_per_segment() {
    for (name, convs) in cases() {
        let want = shape(&run_convs(&convs));
        let got = shape(&run_convs(&with(&convs, |c| c.segments = vec![1])));
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn overlapping_segments() {
    for (name, convs) in cases() {
        let want = shape(&run_convs(&convs));
        let over = with(&convs, |c| {
            c.segments = vec![7];
            c.overlap = 3;
        });
        // The segments really overlap: more payload on the wire than without.
        let wire = |cs: &[Conversation]| cs.iter().flat_map(frames).map(|f| tcp_info(&f).1).sum::<usize>();
        assert!(wire(&over) > wire(&with(&convs, |c| c.segments = vec![7])) + 100, "{name}");
        let got = shape(&run_convs(&over));
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn reordered_segments() {
    for (name, convs) in cases() {
        let want = shape(&run_convs(&convs));
        let small = with(&convs, |c| c.segments = vec![5]);
        let swaps = std::cell::Cell::new(0);
        // Swap neighbouring data segments of the same sender (their times too,
        // so that the capture order is the swapped one).
        let got = shape(&run_frames(&mangled(&small, |mut v| {
            let mut i = 0;
            while i + 1 < v.len() {
                if is_data(&v[i]) && is_data(&v[i + 1]) && tcp_info(&v[i]).0 == tcp_info(&v[i + 1]).0 {
                    let (t0, t1) = (v[i].time, v[i + 1].time);
                    v.swap(i, i + 1);
                    v[i].time = t0;
                    v[i + 1].time = t1;
                    swaps.set(swaps.get() + 1);
                    i += 2;
                } else {
                    i += 1;
                }
            }
            v
        })));
        assert!(swaps.get() > 50, "{name}: {} swaps", swaps.get());
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn duplicated_segments() {
    for (name, convs) in cases() {
        let want = shape(&run_convs(&convs));
        let got = shape(&run_frames(&mangled(&with(&convs, |c| c.segments = vec![9]), |v| {
            v.into_iter().flat_map(|f| if is_data(&f) { vec![f.clone(), f] } else { vec![f] }).collect()
        })));
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn a_lost_segment_is_a_gap_with_the_holder_unknown() {
    // The clean exchange without the frame carrying B's GTA: B's later
    // transfer reveals B holds the Turn; nothing is blamed on anybody.
    let convs = scenario::clean_twa(&Place::default(), Pdus::normal());
    let full = run_convs(&convs);
    let gta = full[0].events.iter().find(|e| e.pdus == ["GTA"]).unwrap().frame;
    let v = run_frames(&mangled(&convs, |mut v| {
        v.remove(usize::try_from(gta).unwrap() - 1);
        v
    }));
    let r = rows(&v[0]);
    let at = r.iter().position(|x| x.contains("T-GAP")).expect("gap row");
    assert_eq!(r[at], "responder T-GAP unknown", "{r:#?}");
    assert_eq!(r[at - 1], "initiator GTC in-transit");
    assert_eq!(r[at + 1], "responder AS responder", "behaviour reveals the holder");
    assert!(kinds(&v[0]).is_empty(), "{:?}", v[0].anomalies);
    // After the gap the rest of the timeline is the same as without it.
    let full_rows = rows(&full[0]);
    let after: Vec<&String> = full_rows.iter().skip_while(|x| !x.contains(" GTA ")).skip(2).collect();
    let got: Vec<&String> = r.iter().skip(at + 2).collect();
    assert_eq!(got, after);
}

#[test]
fn a_capture_starting_mid_stream_infers_the_holder() {
    let convs = scenario::clean_twa(&Place::default(), Pdus::normal());
    let full = run_convs(&convs);
    // Start just after the AC: no handshake, no CN/AC.
    let ac = full[0].events.iter().find(|e| e.pdus == ["AC"]).unwrap().frame;
    let all = mangled(&convs, |v| v);
    let v = run_frames(&all[usize::try_from(ac).unwrap()..]);
    let a = &v[0];
    assert!(a.info.mid_stream);
    assert_eq!(a.mode, None, "no CN seen");
    assert!(a.anomalies.is_empty(), "{:?}", a.anomalies);
    let r = rows(a);
    assert!(!r.iter().any(|x| x.contains("T-OPEN")));
    assert_eq!(r[0], "initiator AS initiator", "the AS shows who holds the Turn");
    // From the first token move on, the same as the full capture.
    let tail = |rows: Vec<String>| rows.into_iter().skip_while(|x| !x.contains(" PT ")).collect::<Vec<_>>();
    assert_eq!(tail(r), tail(rows(&full[0])));
    assert_eq!(a.events.last().map(|e| e.turn), Some(TurnHolder::None));
}
