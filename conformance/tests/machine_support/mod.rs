//! Shared helpers for the machine tests: building MTA pairs, running them
//! and checking what the tracker says about their PDUs.
#![allow(dead_code)]

use rtse_codec::presentation::Mode;
use rtse_conformance::flaw::Flaw;
use rtse_conformance::loopback::Loopback;
use rtse_conformance::machine::{Apdu, Dialogue, Indication, Input, Request};
use rtse_conformance::mta::{MtaConfig, ReferenceMta};
use rtse_conformance::tracker::{AnomalyKind, AssociationLinker};

pub const MAX: usize = 100_000;

pub fn cfg(name: &str, opener: bool, mode: Mode) -> MtaConfig {
    let mut c = MtaConfig::new(name, opener);
    c.machine.mode = mode;
    c
}

/// A (initiator, opener) and B, both reference unless flawed.
pub fn pair_with(mode: Mode, fa: Option<Flaw>, fb: Option<Flaw>) -> Loopback<ReferenceMta> {
    let a = ReferenceMta::new(cfg("MTA-A", true, mode).with_flaw(fa));
    let b = ReferenceMta::new(cfg("MTA-B", false, mode).with_flaw(fb));
    Loopback::new(a, b)
}

pub fn pair(mode: Mode) -> Loopback<ReferenceMta> {
    pair_with(mode, None, None)
}

pub fn msg(i: usize) -> Apdu {
    Apdu::message(&format!("MSG-{i:04}"), format!("hello {i}").as_bytes())
}

pub fn big(i: usize, len: usize) -> Apdu {
    let content: Vec<u8> = (0..len).map(|k| (k * 7 + i) as u8).collect();
    Apdu::message(&format!("BIG-{i:04}"), &content)
}

/// Open the association (A requests RT-OPEN) and run until quiet.
pub fn open(p: &mut Loopback<ReferenceMta>) {
    p.feed(0, Input::Request(Request::Open));
    p.run(MAX);
    assert!(p.ends[0].machine().is_open(), "A open: {:#?}", p.transcript());
    assert!(p.ends[1].machine().is_open(), "B open: {:#?}", p.transcript());
}

/// Kinds of all anomalies on all associations.
pub fn anomalies(l: &AssociationLinker) -> Vec<(u32, AnomalyKind)> {
    l.anomalies().map(|(id, a)| (id.0, a.kind)).collect()
}

/// Every PDU decodes; the tracker sees no anomaly.
pub fn assert_clean(p: &Loopback<ReferenceMta>) {
    let errs = p.decode_errors();
    assert!(errs.is_empty(), "decode errors: {errs:#?}\n{:#?}", p.transcript());
    let l = p.observe();
    let details: Vec<String> = l.anomalies().map(|(id, a)| format!("{}: {a}", id.0)).collect();
    assert!(details.is_empty(), "anomalies: {details:#?}\n{:#?}", p.transcript());
}

pub fn has_anomaly(p: &Loopback<ReferenceMta>, kind: AnomalyKind) -> bool {
    p.observe().anomalies().any(|(_, a)| a.kind == kind)
}

/// Labels delivered to `who`, each with its count.
pub fn delivered(p: &Loopback<ReferenceMta>, who: usize) -> Vec<(String, u32)> {
    p.ends[who].delivered().iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

pub fn names(p: &Loopback<ReferenceMta>) -> Vec<String> {
    p.transcript()
}

pub fn count_ind(p: &Loopback<ReferenceMta>, who: usize, f: impl Fn(&Indication) -> bool) -> usize {
    p.indications().iter().filter(|(w, i)| *w == who && f(i)).count()
}

pub fn twa() -> Dialogue {
    Dialogue::Twa
}

/// Runs until `from` is about to deliver its next `name` PDU (the `nth`,
/// from 1); panics if it never comes.
pub fn until(p: &mut Loopback<ReferenceMta>, from: usize, name: &str, nth: usize) {
    let mut seen = 0;
    let found = p.run_until(MAX, |info, f| {
        if f == from && info.name() == name && info.eot {
            seen += 1;
            return seen == nth;
        }
        false
    });
    assert!(found, "no {name} #{nth} from {from}: {:#?}", p.transcript());
}

/// The APDUs side `who` was handed (T-TRANSFER indications), in order.
pub fn transfers_to(p: &Loopback<ReferenceMta>, who: usize) -> Vec<Vec<u8>> {
    p.indications()
        .iter()
        .filter_map(|(w, i)| match i {
            Indication::TransferInd { apdu, .. } if *w == who => Some(apdu.clone()),
            _ => None,
        })
        .collect()
}
