//! A compact DSL for Turn tracker scenarios.
//!
//! One event per line: `[#n] SIDE EVENT [params] [=> holder] [! kind, kind]`
//! * `#n` association number (default `#0`); associations are opened on
//!   first mention; `#n open host=H` opens one with an initiator host.
//! * SIDE: `I` (initiator) or `R` (responder).
//! * EVENT: the short names of `TurnEvent::name()` (`CN`, `AC`, `PT`, `GTC`,
//!   `T-OPEN`, `T-RST`, ...).
//! * params: `ts=00` (hex), `ref=CALLING,COMMON`, `recover=CALLING,COMMON`
//!   (CN) or bare `recover` (AC), `twa`/`mono`, `x410`/`normal`, `ckpt=N`,
//!   `win=N`, `req=HEX`, `p=N` (PT priority), `tokens=HEX`, `id=N` (AS),
//!   `old=N serial=N new=N conn=CALLING,COMMON` (AR), `n=N` (DT octets),
//!   `s=N` (serials), `noconfirm` (MIP), `l=LABEL`, `user`/`provider` (AB),
//!   `recovery` (RF), `t=N[s|ms]` (time, any event).
//! * `=> holder` asserts the holder after the event; `! kinds` asserts
//!   exactly these anomaly kinds were raised by it; without `!` the event
//!   must raise none.
//! * `# comment` lines (a `#` followed by a space) and blank lines are skipped.
#![allow(dead_code)]

use rtse_conformance::tracker::*;

pub struct Run {
    pub linker: AssociationLinker,
    pub rows: Vec<TimelineRow>,
}

impl Run {
    /// Anomaly kinds of one association (after finish).
    pub fn kinds(&self, assoc: u32) -> Vec<AnomalyKind> {
        self.anomalies(assoc).iter().map(|a| a.kind).collect()
    }
    pub fn anomalies(&self, assoc: u32) -> Vec<Anomaly> {
        self.linker.tracker(AssocId(assoc)).map(|t| t.anomalies().to_vec()).unwrap_or_default()
    }
    pub fn all_kinds(&self) -> Vec<(u32, AnomalyKind)> {
        self.linker.anomalies().map(|(id, a)| (id.0, a.kind)).collect()
    }
    pub fn tracker(&self, assoc: u32) -> &TurnTracker {
        self.linker.tracker(AssocId(assoc)).expect("association")
    }
}

fn conn(v: &str) -> ConnRef {
    let (a, b) = v.split_once(',').expect("ref=CALLING,COMMON");
    ConnRef::new(a, b)
}

fn hex8(v: &str) -> u8 {
    u8::from_str_radix(v, 16).expect("hex octet")
}

fn num<T: std::str::FromStr>(v: &str) -> T
where
    T::Err: std::fmt::Debug,
{
    v.parse().expect("number")
}

fn time(v: &str) -> u64 {
    if let Some(s) = v.strip_suffix("ms") {
        num::<u64>(s) * 1_000_000
    } else if let Some(s) = v.strip_suffix('s') {
        num::<u64>(s) * 1_000_000_000
    } else {
        num(v)
    }
}

fn holder(v: &str) -> TurnHolder {
    match v {
        "initiator" => TurnHolder::Initiator,
        "responder" => TurnHolder::Responder,
        "in-transit" => TurnHolder::InTransit,
        "none" => TurnHolder::None,
        "unknown" => TurnHolder::Unknown,
        _ => panic!("holder {v}"),
    }
}

pub fn kind(v: &str) -> AnomalyKind {
    let all = [
        AnomalyKind::TurnLost,
        AnomalyKind::TwoHolders,
        AnomalyKind::DataWithoutTurn,
        AnomalyKind::PleaseUnanswered,
        AnomalyKind::TransferLost,
        AnomalyKind::TransferDuplicated,
        AnomalyKind::PleaseFromHolder,
        AnomalyKind::GtcDuringActivity,
        AnomalyKind::GtcWhilePending,
        AnomalyKind::WindowExceeded,
        AnomalyKind::ResumeBeyondCheckpoint,
        AnomalyKind::RecoveryByResponder,
        AnomalyKind::RecoveryUnlinked,
        AnomalyKind::InvalidTokenSetting,
        AnomalyKind::SplitTokens,
        AnomalyKind::TurnInMonologue,
        AnomalyKind::ReleaseWithoutTurn,
        AnomalyKind::SessionViolation,
        AnomalyKind::ActivityViolation,
        AnomalyKind::SerialError,
        AnomalyKind::UnexpectedEvent,
        AnomalyKind::Malformed,
    ];
    *all.iter().find(|k| k.name() == v).unwrap_or_else(|| panic!("anomaly kind {v}"))
}

/// Parses one event line (without `#n`, `=>`, `!`).
pub fn parse_event(side: Side, words: &[&str], t: &mut u64) -> TurnEvent {
    let (name, params) = words.split_first().expect("event name");
    let mut p: Vec<(&str, &str)> = Vec::new();
    for w in params {
        let (k, v) = w.split_once('=').unwrap_or((w, ""));
        if k == "t" {
            *t = time(v);
        } else {
            p.push((k, v));
        }
    }
    let get = |k: &str| p.iter().find(|(pk, _)| *pk == k).map(|(_, v)| *v);
    let has = |k: &str| p.iter().any(|(pk, _)| *pk == k);
    let serial = || get("s").map_or(1, num);
    let _ = side;
    match *name {
        "T-OPEN" => TurnEvent::TransportOpen,
        "T-FIN" => TurnEvent::TransportClosed { how: CloseHow::Fin },
        "T-RST" => TurnEvent::TransportClosed { how: CloseHow::Rst },
        "T-EOF" => TurnEvent::TransportClosed { how: CloseHow::Eof },
        "T-GAP" => TurnEvent::TransportClosed { how: CloseHow::Gap },
        "CN" => TurnEvent::Connect(Box::new(Connect {
            token_setting: get("ts").map(hex8),
            conn_ref: get("ref").map(conn),
            recover: get("recover").map(conn),
            dialogue: if has("mono") {
                Some(Dialogue::Monologue)
            } else if has("twa") {
                Some(Dialogue::Twa)
            } else {
                None
            },
            mode: if has("x410") {
                Some(Mode::X410)
            } else if has("normal") {
                Some(Mode::Normal)
            } else {
                None
            },
            checkpoint_size: get("ckpt").map(num),
            window_size: get("win").map(num),
            session_requirements: get("req").map(|v| u16::from_str_radix(v, 16).expect("hex")),
        })),
        "AC" => TurnEvent::Accept(Accept {
            token_setting: get("ts").map(hex8),
            recover: has("recover"),
            checkpoint_size: get("ckpt").map(num),
            window_size: get("win").map(num),
            session_requirements: get("req").map(|v| u16::from_str_radix(v, 16).expect("hex")),
        }),
        "RF" => TurnEvent::Refuse { reason: get("reason").map(num), recovery_refused: has("recovery") },
        "PT" => TurnEvent::PleaseTokens { tokens: get("tokens").map_or(0x01, hex8), priority: get("p").map(num) },
        "GT" => TurnEvent::GiveTokens { tokens: get("tokens").map_or(0x15, hex8) },
        "GTC" => TurnEvent::GiveControl,
        "GTA" => TurnEvent::GiveControlAck,
        "AS" => TurnEvent::ActivityStart { id: ActivityId::number(get("id").map_or(1, num)) },
        "AR" => TurnEvent::ActivityResume(Box::new(Resume {
            old_conn: get("conn").map(conn),
            old_id: ActivityId::number(get("old").map_or(1, num)),
            serial: get("serial").map_or(0, num),
            new_id: ActivityId::number(get("new").map_or(2, num)),
        })),
        "DT" => TurnEvent::Data { octets: get("n").map_or(100, num) },
        "MIP" => TurnEvent::MinorSync { serial: serial(), confirm_required: !has("noconfirm") },
        "MIA" => TurnEvent::MinorSyncAck { serial: serial() },
        "AE" => TurnEvent::ActivityEnd { serial: serial() },
        "AEA" => TurnEvent::ActivityEndAck { serial: serial() },
        "AI" => TurnEvent::ActivityInterrupt { reason: None },
        "AIA" => TurnEvent::ActivityInterruptAck,
        "AD" => TurnEvent::ActivityDiscard { reason: None },
        "ADA" => TurnEvent::ActivityDiscardAck,
        "ED" => TurnEvent::ExceptionReport { reason: None },
        "LABEL" => TurnEvent::TransferLabel { label: get("l").expect("l=label").to_owned() },
        "FN" => TurnEvent::Release,
        "DN" => TurnEvent::Disconnect,
        "NF" => TurnEvent::NotFinished,
        "AB" => TurnEvent::Abort { user: !has("provider"), reason: get("reason").map(num) },
        "AA" => TurnEvent::AbortAccept,
        "TD" => TurnEvent::Other { name: "TD" },
        "CD" => TurnEvent::Other { name: "CD" },
        "MALFORMED" => TurnEvent::Malformed { detail: "test".to_owned() },
        other => panic!("unknown event {other}"),
    }
}

/// Runs a script through a linker (default tracker settings), asserting
/// the per-line expectations; then finishes.
pub fn run(script: &str) -> Run {
    run_with(TrackerConfig::default(), script)
}

pub fn run_with(cfg: TrackerConfig, script: &str) -> Run {
    let mut linker = AssociationLinker::new(cfg);
    let mut ids: Vec<AssocId> = Vec::new();
    let mut rows = Vec::new();
    let mut t = 0u64;
    let mut seq = 0u64;
    for (lineno, raw) in script.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with("# ") || line == "#" {
            continue;
        }
        let (line, expect_kinds) = match line.split_once('!') {
            Some((a, b)) => (a, Some(b.split(',').map(|k| kind(k.trim())).collect::<Vec<_>>())),
            None => (line, None),
        };
        let (line, expect_holder) = match line.split_once("=>") {
            Some((a, b)) => (a, Some(holder(b.trim()))),
            None => (line, None),
        };
        let mut words: Vec<&str> = line.split_whitespace().collect();
        let mut assoc = 0u32;
        if let Some(w) = words.first().and_then(|w| w.strip_prefix('#')) {
            assoc = num(w);
            words.remove(0);
        }
        let host = if words.first() == Some(&"open") {
            let h = words.get(1).and_then(|w| w.strip_prefix("host=")).map(str::to_owned);
            Some(h)
        } else {
            None
        };
        while ids.len() <= assoc as usize {
            let h = if ids.len() == assoc as usize { host.clone().flatten() } else { None };
            ids.push(linker.open(h.as_deref()));
        }
        if host.is_some() {
            continue;
        }
        let id = ids[assoc as usize];
        let (side, rest) = words.split_first().unwrap_or_else(|| panic!("line {}: empty", lineno + 1));
        let side = match *side {
            "I" => Side::Initiator,
            "R" => Side::Responder,
            s => panic!("line {}: side {s}", lineno + 1),
        };
        seq += 1;
        let event = parse_event(side, rest, &mut t);
        let ev = Observed { seq, time_ns: t, from: side, event };
        let step = linker.observe(id, &ev).expect("known association");
        let row = linker.row(id, &ev, &step).expect("row");
        let tracker = linker.tracker(id).expect("tracker");
        let raised: Vec<&Anomaly> = tracker.anomalies()[step.anomalies.clone()].iter().collect();
        let raised_kinds: Vec<AnomalyKind> = raised.iter().map(|a| a.kind).collect();
        let expected = expect_kinds.unwrap_or_default();
        assert_eq!(raised_kinds, expected, "line {}: `{}`: anomalies {:#?}", lineno + 1, raw.trim(), raised);
        if let Some(h) = expect_holder {
            assert_eq!(step.turn, h, "line {}: `{}`: holder", lineno + 1, raw.trim());
        }
        assert_eq!(tracker.holder(), step.turn);
        rows.push(row);
    }
    linker.finish();
    Run { linker, rows }
}
