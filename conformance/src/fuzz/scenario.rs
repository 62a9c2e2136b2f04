//! Structure-aware scenario fuzzing: the input is a [`Script`] (decoded with
//! [`arbitrary`]) of operations between two reference MTAs, mapped onto the
//! simulator's own data ([`Scenario`]: submissions, [`Fault`]s, [`TamperAt`]s)
//! and run by [`sim::run`], which judges every invariant
//! ([`crate::tracker::Invariant`] through the tracker, plus the MTAs'
//! delivery records) on the whole run. There is no second network here.
//!
//! # Input layout
//!
//! Two header octets, then operations of five octets each (an opcode and
//! four arguments; at most [`MAX_OPS`]); missing octets read as zero, so
//! every input is a script. Fixed-size operations keep libFuzzer's byte
//! mutations aligned with the structure, and let the seed generator write
//! scripts ([`Script::encode`]).
//!
//! | octet | meaning |
//! |---|---|
//! | 0 | bit 0 X.410-1984 mode, bit 1 monologue (every message is then the opener's), bits 2-3 who opens (2: B, else A; the opener also sends one message when the network heals), bit 4 the flaw is B's ([`flaw_hunt`]) |
//! | 1 | backlog threshold: 0 is the default (50), else `2 + n % 8` (the MTA aborts and opens afresh) |
//! | 5k+2.. | opcode `% 12`, then `a b c d` |
//!
//! | op | name | arguments |
//! |---|---|---|
//! | 0 | submit | `a`: bit 0 side, bits 1-2 count - 1, bits 3-4 size (40, 700, 3000 octets); `b`: at (`% 100` x 100 ms); `c`: every (x 50 ms) |
//! | 1 | please | `a` bit 0 side, `b` at: one message from that side (the reference MTA asks for the Turn when it has mail and does not hold it) |
//! | 2 | give | `a` bit 0 side, `b` at: one message from the *other* side (the holder gives the Turn when asked and idle) |
//! | 3 | drop before | `a` PDU kind ([`PDU_KINDS`]), `b` n (`% 4 + 1`), `c` how ([`How::ALL`]), `d` dirs (A, B, both) |
//! | 4 | drop after | as 3 |
//! | 5 | drop at | `b` at (`% 100` x 100 ms), `c` how, `d` dirs |
//! | 6 | drop at index | `b` the n-th TPKT overall (`% 64 + 1`), `c` how, `d` dirs |
//! | 7 | duplicate | `a` kind, `b` n |
//! | 8 | mutate octet | `a` kind, `b` n, `c` offset, `d` XOR mask |
//! | 9 | mutate field | `a` kind, `b` n, `c` field ([`FIELDS`]: TPKT version, TPKT length, TPDU code, SPDU SI, SPDU length, last octet), `d` XOR mask |
//! | 10 | withhold | `a` kind, `b` n, `c` delay (x 40 ms) |
//! | 11 | reorder | `a` kind, `b` n |
//!
//! "Deliver" is what the network does to every PDU no operation touches.
//! "Recover" is the MTAs' own answer to every drop (the initiator
//! re-establishes the association when it has mail), so it is no operation
//! of its own; the invariants judge it. "Release" (RT-CLOSE) is out of
//! reach: the reference MTA never closes an association it may still use.
//!
//! # Oracles
//!
//! Faults fire only in the fault phase (the first 10 s of virtual time);
//! then the network is healthy for 120 s and everything must be delivered.
//! Every invariant must hold (see [`crate::sim`] for what an abort excuses,
//! and [`Tamper`] for what a tampered association excuses): a violation
//! panics with the report (violations, faults, the PDU trace) and the
//! script, which libFuzzer reports as a crash.

use super::Outcome;
use crate::flaw::Flaw;
use crate::machine::{Dialogue, Tick};
use crate::sim::{self, Dirs, Fault, How, Scenario, Submit, Tamper, TamperAt, When};
use arbitrary::{Arbitrary, Unstructured};
use rtse_codec::presentation::Mode;
use std::sync::Arc;

const MS: Tick = 1_000_000;

/// Most operations per script.
pub const MAX_OPS: usize = 12;

/// PDU kinds a point can name (`a % len`); `TPKT` means any kind.
pub const PDU_KINDS: [&str; 20] = [
    "TPKT", "GTC", "PT", "AS", "AR", "DT", "MIP", "MIA", "AE", "AEA", "AD", "ADA", "CN", "AC", "FN", "DN", "AB", "RS",
    "GT", "CR",
];

/// Fields a "mutate field" operation hits: name and octet offset in the
/// TPKT (usize::MAX: the last octet).
pub const FIELDS: [(&str, usize); 6] = [
    ("tpkt-version", 0),
    ("tpkt-length", 3),
    ("tpdu-code", 5),
    ("spdu-si", 7),
    ("spdu-length", 8),
    ("last-octet", usize::MAX),
];

/// Which PDU an operation aims at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Point {
    /// Index into [`PDU_KINDS`].
    pub kind: u8,
    /// The n-th (from 1) of that kind.
    pub n: u8,
}

/// One operation (see the module docs for the byte layout).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `count` messages of `size` octets from `side` at `at_ms`, one every `every_ms`.
    Submit { side: u8, count: u8, size: u8, at: u8, every: u8 },
    /// One message from `side` at `at`: it asks for the Turn.
    Please { side: u8, at: u8 },
    /// One message from the other side at `at`: `side` gives the Turn.
    Give { side: u8, at: u8 },
    /// The association dies before/after the PDU.
    Drop { point: Point, after: bool, how: u8, dirs: u8 },
    /// The association dies at a time.
    DropAt { at: u8, how: u8, dirs: u8 },
    /// The association dies before the n-th TPKT overall.
    DropIndex { index: u8, how: u8, dirs: u8 },
    /// The PDU is delivered twice.
    Duplicate(Point),
    /// One octet of the PDU is changed.
    Mutate { point: Point, offset: u8, xor: u8 },
    /// One header field of the PDU is changed.
    MutateField { point: Point, field: u8, xor: u8 },
    /// The PDU is held back.
    Withhold { point: Point, delay: u8 },
    /// The PDU and the next one on the connection swap.
    Reorder(Point),
}

/// A script: mode, dialogue, openers, threshold and operations.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Script {
    /// Header octet 0.
    pub flags: u8,
    /// Header octet 1.
    pub backlog: u8,
    /// At most [`MAX_OPS`].
    pub ops: Vec<Op>,
}

fn byte(u: &mut Unstructured<'_>) -> u8 {
    u8::arbitrary(u).unwrap_or(0)
}

impl<'a> Arbitrary<'a> for Script {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let flags = byte(u);
        let backlog = byte(u);
        let mut ops = Vec::new();
        while !u.is_empty() && ops.len() < MAX_OPS {
            let [op, a, b, c, d] = [byte(u), byte(u), byte(u), byte(u), byte(u)];
            let point = Point { kind: a, n: b };
            ops.push(match op % 12 {
                0 => Op::Submit { side: a & 1, count: (a >> 1) & 3, size: (a >> 3) & 3, at: b, every: c },
                1 => Op::Please { side: a & 1, at: b },
                2 => Op::Give { side: a & 1, at: b },
                3 | 4 => Op::Drop { point, after: op % 12 == 4, how: c, dirs: d },
                5 => Op::DropAt { at: b, how: c, dirs: d },
                6 => Op::DropIndex { index: b, how: c, dirs: d },
                7 => Op::Duplicate(point),
                8 => Op::Mutate { point, offset: c, xor: d },
                9 => Op::MutateField { point, field: c, xor: d },
                10 => Op::Withhold { point, delay: c },
                _ => Op::Reorder(point),
            });
        }
        Ok(Script { flags, backlog, ops })
    }
}

impl Script {
    /// The script an input reads as (every input is one).
    #[must_use]
    pub fn decode(data: &[u8]) -> Script {
        Script::arbitrary(&mut Unstructured::new(data)).unwrap_or_default()
    }

    /// The octets [`Script::decode`] reads back as this script.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut v = vec![self.flags, self.backlog];
        for op in self.ops.iter().take(MAX_OPS) {
            let p = |p: &Point| [p.kind, p.n];
            let o: [u8; 5] = match *op {
                Op::Submit { side, count, size, at, every } => {
                    [0, (side & 1) | (count & 3) << 1 | (size & 3) << 3, at, every, 0]
                }
                Op::Please { side, at } => [1, side & 1, at, 0, 0],
                Op::Give { side, at } => [2, side & 1, at, 0, 0],
                Op::Drop { point, after, how, dirs } => {
                    let [a, b] = p(&point);
                    [if after { 4 } else { 3 }, a, b, how, dirs]
                }
                Op::DropAt { at, how, dirs } => [5, 0, at, how, dirs],
                Op::DropIndex { index, how, dirs } => [6, 0, index, how, dirs],
                Op::Duplicate(point) => [7, point.kind, point.n, 0, 0],
                Op::Mutate { point, offset, xor } => [8, point.kind, point.n, offset, xor],
                Op::MutateField { point, field, xor } => [9, point.kind, point.n, field, xor],
                Op::Withhold { point, delay } => [10, point.kind, point.n, delay, 0],
                Op::Reorder(point) => [11, point.kind, point.n, 0, 0],
            };
            v.extend_from_slice(&o);
        }
        v
    }

    /// The flaw side of [`flaw_hunt`]: 0 = A, 1 = B.
    #[must_use]
    pub fn flaw_side(&self) -> usize {
        usize::from(self.flags & 0x10 != 0)
    }

    /// The simulator's scenario for this script (reference MTAs; `name`
    /// is what the replay line shows).
    #[must_use]
    pub fn scenario(&self, name: &str) -> Scenario {
        let mut s = Scenario::new(name);
        // Every script shares one message cache: a message is a function
        // of (side, number, size) alone (label and content; not the mode
        // or the script), so building its P1 octets once serves every
        // execution. Bounded: at most MAX_OPS * 4 + 1 messages a side, in
        // three sizes.
        static MESSAGES: std::sync::OnceLock<crate::sim::scenario::MessageCache> = std::sync::OnceLock::new();
        s.messages = MESSAGES.get_or_init(Default::default).clone();
        // The same for the machines' outputs (their memo of PDUs built and
        // decoded: functions of their keys, whatever the script).
        static OUTPUTS: std::sync::OnceLock<crate::sim::scenario::OutputPool> = std::sync::OnceLock::new();
        s.outputs = OUTPUTS.get_or_init(Default::default).clone();
        s.mode = if self.flags & 1 != 0 { Mode::X410 } else { Mode::Normal };
        s.dialogue = if self.flags & 2 != 0 { Dialogue::Monologue } else { Dialogue::Twa };
        // One opener (bits 2-3 == 2: B, else A): the simulator carries one
        // transport connection at a time, so two MTAs opening at once
        // would collide in a way no real network shows.
        let opener = usize::from((self.flags >> 2) & 3 == 2);
        s.opener = [opener == 0, opener == 1];
        if self.backlog != 0 {
            s.backlog_threshold = 2 + usize::from(self.backlog % 8);
        }
        let at = |b: u8| u64::from(b % 100) * 100 * MS;
        let one = |side: usize, b: u8| Submit { side, count: 1, at: at(b), every: 0, size: 40 };
        let kind = |p: &Point| {
            let k = PDU_KINDS[usize::from(p.kind) % PDU_KINDS.len()];
            (k != "TPKT").then(|| k.to_owned())
        };
        let n = |p: &Point| u32::from(p.n % 4) + 1;
        let how = |c: u8| How::ALL[usize::from(c) % How::ALL.len()];
        let dirs = |d: u8| [Dirs::A, Dirs::B, Dirs::Both][usize::from(d % 3)];
        for op in self.ops.iter().take(MAX_OPS) {
            match *op {
                Op::Submit { side, count, size, at: b, every } => s.submit.push(Submit {
                    side: usize::from(side & 1),
                    count: u32::from(count & 3) + 1,
                    at: at(b),
                    every: u64::from(every) * 50 * MS,
                    size: [40, 700, 3000, 40][usize::from(size & 3)],
                }),
                Op::Please { side, at: b } => s.submit.push(one(usize::from(side & 1), b)),
                Op::Give { side, at: b } => s.submit.push(one(1 - usize::from(side & 1), b)),
                Op::Drop { point, after, how: c, dirs: d } => {
                    let (pdu, n) = (kind(&point), n(&point));
                    let when = if after { When::After { pdu, n } } else { When::Before { pdu, n } };
                    // A cut is defined before a PDU only.
                    let how = match how(c) {
                        How::Cut if after => How::Rst,
                        h => h,
                    };
                    s.faults.push(Fault { when, how, dirs: dirs(d) });
                }
                Op::DropAt { at: b, how: c, dirs: d } => {
                    let how = match how(c) {
                        How::Cut => How::Rst,
                        h => h,
                    };
                    s.faults.push(Fault { when: When::At(at(b)), how, dirs: dirs(d) });
                }
                Op::DropIndex { index, how: c, dirs: d } => s.faults.push(Fault {
                    when: When::Before { pdu: None, n: u32::from(index % 64) + 1 },
                    how: how(c),
                    dirs: dirs(d),
                }),
                Op::Duplicate(p) => s.tamper.push(TamperAt { pdu: kind(&p), n: n(&p), what: Tamper::Duplicate }),
                Op::Mutate { point, offset, xor } => s.tamper.push(TamperAt {
                    pdu: kind(&point),
                    n: n(&point),
                    what: Tamper::Mutate { offset: usize::from(offset), xor },
                }),
                Op::MutateField { point, field, xor } => s.tamper.push(TamperAt {
                    pdu: kind(&point),
                    n: n(&point),
                    what: Tamper::Mutate { offset: FIELDS[usize::from(field) % FIELDS.len()].1, xor },
                }),
                Op::Withhold { point, delay } => s.tamper.push(TamperAt {
                    pdu: kind(&point),
                    n: n(&point),
                    what: Tamper::Withhold(u64::from(delay) * 40 * MS),
                }),
                Op::Reorder(p) => s.tamper.push(TamperAt { pdu: kind(&p), n: n(&p), what: Tamper::Reorder }),
            }
        }
        // Monologue: only the association-initiator sends, and the
        // reference MTA never releases an association it may still use, so
        // mail on both sides would need two associations at once, which the
        // simulator does not model: in monologue every message is the
        // opener's.
        if s.dialogue == Dialogue::Monologue {
            for x in &mut s.submit {
                x.side = opener;
            }
        }
        // When the network heals the opener has one more message: an abort
        // ends an association for good (no recovery after AB or
        // RT-U-ABORT, and a tampered PDU is answered by one), and a
        // non-opener left with mail would otherwise wait for ever for an
        // association nobody opens. The healthy phase must deliver it too.
        s.submit.push(Submit { side: opener, count: 1, at: s.fault_phase, every: 0, size: 40 });
        s
    }
}

/// The Turn given back and lost: B asks for the Turn (a message at 0 s),
/// A sends two messages 3 s apart from 2 s on, so B gives the Turn back
/// (GTC #2) and that GTC is lost by RST, both told. A seed
/// (`give_back`, flaw on B): with `turn-cleared-on-send` B counts the
/// lost GTC as given, A recovers proposing that B holds the Turn, and
/// nobody acts as holder (`turn-lost`).
#[must_use]
pub fn give_back() -> Vec<Op> {
    vec![
        Op::Please { side: 1, at: 0 },
        Op::Submit { side: 0, count: 1, size: 0, at: 20, every: 60 },
        Op::Drop { point: Point { kind: 1, n: 1 }, after: false, how: 1, dirs: 2 },
    ]
}

/// The seed of every simulated run (the script decides everything else;
/// jitter is 0, so the PRNG only serves random faults, which scripts do
/// not use).
pub const SEED: u64 = 0x7275_726e;

/// Run `script` (with `flaw` on the script's flaw side) in the simulator.
#[must_use]
pub fn run(script: &Script, flaw: Option<Flaw>) -> sim::Outcome {
    let mut sc = script.scenario("fuzz");
    if let Some(f) = flaw {
        sc.flaws[script.flaw_side()] = Some(f);
    }
    sim::run(SEED, &Arc::new(sc))
}

/// The `turn_scenario` target: the input as a [`Script`] between two
/// reference MTAs; panics on any violated invariant with the report and
/// the script.
pub fn turn_scenario(data: &[u8]) -> Outcome {
    let script = Script::decode(data);
    let o = run(&script, None);
    assert!(o.ok(), "fuzz turn_scenario: invariant violated\n{}script: {script:?}", o.report());
    Outcome::Decoded
}

/// The flaw `flaw_hunt` looks for: the `RTSE_FLAW` environment variable
/// (a flaw name; read once), else the input's first octet (`% 11` into
/// [`Flaw::ALL`]).
#[must_use]
pub fn hunted_flaw(first: u8) -> Flaw {
    static FIXED: std::sync::OnceLock<Option<Flaw>> = std::sync::OnceLock::new();
    let fixed = FIXED.get_or_init(|| std::env::var("RTSE_FLAW").ok().and_then(|n| n.parse().ok()));
    fixed.unwrap_or(Flaw::ALL[usize::from(first) % Flaw::ALL.len()])
}

/// What [`flaw_hunt`] ran, without panicking: the flaw and the run.
#[must_use]
pub fn hunt(data: &[u8]) -> (Flaw, sim::Outcome) {
    let (first, rest) = data.split_first().map_or((0, &[][..]), |(f, r)| (*f, r));
    let flaw = hunted_flaw(first);
    (flaw, run(&Script::decode(rest), Some(flaw)))
}

/// The `flaw_hunt` target: the first octet chooses the flaw (see
/// [`hunted_flaw`]), the rest is a [`Script`] with that flaw on one side.
/// **Panics when the flaw is detected** (any invariant violated), so
/// libFuzzer's time to the first crash is the time to find the flaw.
pub fn flaw_hunt(data: &[u8]) -> Outcome {
    let (flaw, o) = hunt(data);
    assert!(o.ok(), "fuzz flaw_hunt: flaw {flaw} detected\n{}", o.report());
    Outcome::Decoded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_encode_and_decode_back() {
        let s = Script {
            flags: 0x0d,
            backlog: 3,
            ops: vec![
                Op::Submit { side: 1, count: 2, size: 1, at: 7, every: 9 },
                Op::Please { side: 0, at: 4 },
                Op::Drop { point: Point { kind: 1, n: 0 }, after: false, how: 1, dirs: 2 },
                Op::Mutate { point: Point { kind: 5, n: 1 }, offset: 9, xor: 0x40 },
                Op::Reorder(Point { kind: 0, n: 3 }),
            ],
        };
        assert_eq!(Script::decode(&s.encode()), s);
        // Missing octets read as zero: a lone opcode is a submit from A.
        assert_eq!(Script::decode(&[0, 0, 0]).ops, vec![Op::Submit { side: 0, count: 0, size: 0, at: 0, every: 0 }]);
        assert_eq!(Script::decode(&[0; 200]).ops.len(), MAX_OPS);
    }

    #[test]
    fn the_field_failure_script_finds_forgets_given_turn_and_not_the_reference() {
        // B asks for the Turn, A gives it (GTC), the GTC is lost by RST, A
        // has mail again 2 s later: recovery must settle who holds it.
        let s = Script {
            flags: 0,
            backlog: 0,
            ops: vec![
                Op::Please { side: 1, at: 0 },
                Op::Submit { side: 0, count: 0, size: 0, at: 20, every: 0 },
                Op::Drop { point: Point { kind: 1, n: 0 }, after: false, how: 1, dirs: 2 },
            ],
        };
        let sc = s.scenario("x");
        assert_eq!(sc.faults[0].to_string(), "rst both before GTC #1");
        let o = run(&s, None);
        assert!(o.ok(), "{}", o.report());
        assert!(!o.faults.is_empty(), "the fault fired");
        let o = run(&s, Some(Flaw::ForgetsGivenTurn));
        assert!(!o.ok(), "forgets-given-turn not detected:\n{}", o.transcript(false));
    }

    #[test]
    fn the_give_back_script_finds_turn_cleared_on_send_and_not_the_reference() {
        let s = Script { flags: 0x10, backlog: 0, ops: give_back() };
        assert_eq!(s.flaw_side(), 1);
        assert_eq!(s.scenario("x").faults[0].to_string(), "rst both before GTC #2");
        let o = run(&s, None);
        assert!(o.ok(), "{}", o.report());
        assert!(!o.faults.is_empty(), "the fault fired");
        let o = run(&s, Some(Flaw::TurnClearedOnSend));
        assert!(!o.ok(), "turn-cleared-on-send not detected:\n{}", o.transcript(false));
        assert!(o.violations.iter().any(|v| v.detail.contains("turn-lost")), "{}", o.report());
    }

    #[test]
    fn tampered_pdus_reach_the_peer_and_the_reference_recovers() {
        for what in [
            Op::Duplicate(Point { kind: 1, n: 0 }),
            Op::Mutate { point: Point { kind: 5, n: 0 }, offset: 7, xor: 0xff },
            Op::MutateField { point: Point { kind: 2, n: 0 }, field: 0, xor: 1 },
            Op::Withhold { point: Point { kind: 5, n: 0 }, delay: 100 },
            Op::Reorder(Point { kind: 0, n: 2 }),
        ] {
            let s = Script {
                flags: 0,
                backlog: 0,
                ops: vec![
                    Op::Submit { side: 0, count: 2, size: 0, at: 0, every: 0 },
                    Op::Please { side: 1, at: 1 },
                    what,
                ],
            };
            let o = run(&s, None);
            assert!(o.ok(), "{what:?}:\n{}", o.report());
            assert!(o.faults.iter().any(|f| !f.contains("rst both (tampered")), "{what:?} never fired");
            assert_eq!(turn_scenario(&s.encode()), Outcome::Decoded);
        }
    }
}
