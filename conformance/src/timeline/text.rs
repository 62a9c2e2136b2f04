//! Human output of a timeline: a header per association, one line per row
//! (runs of identical rows, such as the DT segments of a long transfer,
//! folded into one), anomalies highlighted, then the anomalies in full.

use super::{Association, Event};
use crate::tracker::{Phase, Side, TurnHolder};
use rtse_codec::capture::Timestamp;
use std::fmt::Write as _;

/// ANSI codes of the styles that live output (`rtse proxy`) also uses.
pub(crate) const RED: &str = "1;31";
pub(crate) const DIM: &str = "2";

/// ANSI styles, or nothing.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub color: bool,
}

impl Style {
    pub(crate) fn paint(self, code: &str, s: &str) -> String {
        let mut out = String::with_capacity(s.len() + if self.color { code.len() + 7 } else { 0 });
        self.paint_into(&mut out, code, s);
        out
    }
    /// [`paint`](Self::paint), appended to `out` (live output builds its
    /// lines in one buffer).
    pub(crate) fn paint_into(self, out: &mut String, code: &str, s: &str) {
        if self.color {
            out.push_str("\x1b[");
            out.push_str(code);
            out.push('m');
            out.push_str(s);
            out.push_str("\x1b[0m");
        } else {
            out.push_str(s);
        }
    }
    pub(crate) fn red(self, s: &str) -> String {
        self.paint(RED, s)
    }
    fn bold(self, s: &str) -> String {
        self.paint("1", s)
    }
    pub(crate) fn dim(self, s: &str) -> String {
        self.paint(DIM, s)
    }
    pub(crate) fn holder(self, h: TurnHolder, width: usize) -> String {
        self.paint(Self::holder_code(h), &format!("{:<width$}", h.name()))
    }
    /// The colour of a holder's name.
    pub(crate) const fn holder_code(h: TurnHolder) -> &'static str {
        match h {
            TurnHolder::Initiator => "34",
            TurnHolder::Responder => "32",
            TurnHolder::InTransit => "33",
            TurnHolder::Unknown => "35",
            TurnHolder::None => DIM,
        }
    }
}

/// Days since 1970-01-01 to (year, month, day) (proleptic Gregorian).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// `2001-09-09` (UTC).
pub fn date(t: Timestamp) -> String {
    let (y, m, d) = civil(i64::try_from(t.secs / 86_400).unwrap_or(0));
    format!("{y:04}-{m:02}-{d:02}")
}

/// `01:46:40.000123` (UTC, microseconds).
pub fn clock(t: Timestamp) -> String {
    let mut out = String::with_capacity(15);
    push_clock(&mut out, t);
    out
}

/// [`clock`], appended to `out`.
pub fn push_clock(out: &mut String, t: Timestamp) {
    let s = t.secs % 86_400;
    let _ = write!(out, "{:02}:{:02}:{:02}.{:06}", s / 3600, s / 60 % 60, s % 60, t.nanos / 1000);
}

fn phase_text(p: Phase) -> &'static str {
    match p {
        Phase::Idle => "nothing seen",
        Phase::TransportUp => "transport only",
        Phase::Connecting => "connecting",
        Phase::Established => "established",
        Phase::Releasing => "releasing",
        Phase::Released => "released",
        Phase::Refused => "refused",
        Phase::Aborted => "aborted",
        Phase::Lost => "lost",
        Phase::Closed => "closed before connecting",
        Phase::Unobserved => "capture ended (or data missing) while open",
    }
}

fn same_run(a: &Event, b: &Event) -> bool {
    a.anomalies.is_empty()
        && b.anomalies.is_empty()
        && a.from == b.from
        && a.turn == b.turn
        && a.pdus == b.pdus
        && !a.pdus.iter().any(|p| p.starts_with("T-"))
}

/// One association as text.
pub fn association(a: &Association, st: Style) -> String {
    let mut s = String::new();
    let mut head = format!("association #{}", a.id);
    if let Some(e) = &a.endpoints {
        head.push_str(&format!("  {e}"));
    }
    if let Some(n) = a.info.stream {
        head.push_str(&format!("  (tcp.stream {n})"));
    }
    let _ = writeln!(s, "{}", st.bold(&format!("━━ {head}")));
    let mut facts = Vec::new();
    facts.push(match a.mode {
        Some(crate::tracker::Mode::Normal) => "normal mode".to_string(),
        Some(crate::tracker::Mode::X410) => "X.410-1984 mode".to_string(),
        None => "mode not seen".to_string(),
    });
    if let Some(d) = a.info.dialogue {
        facts.push(
            match d {
                crate::tracker::Dialogue::Twa => "two-way alternate",
                crate::tracker::Dialogue::Monologue => "monologue",
            }
            .to_string(),
        );
    }
    if let (Some(i), Some(r)) = (&a.initiator, &a.responder) {
        facts.push(format!("initiator {i}, responder {r}"));
    }
    if let Some(p) = a.info.phase {
        facts.push(format!("ended: {}", phase_text(p)));
    }
    let _ = writeln!(s, "   {}", facts.join(" · "));
    let mut links = Vec::new();
    if let Some(r) = a.recovers {
        links.push(format!("recovers #{r}"));
    }
    if let Some(r) = a.info.recovered_by {
        links.push(format!("recovered by #{r}"));
    }
    if a.info.mid_stream {
        links.push("capture starts mid-connection".into());
    }
    if a.info.swapped {
        links.push("TCP server is the association-initiator".into());
    }
    if a.info.senders_guessed {
        links.push("senders guessed from the PDUs (give --from to fix them)".into());
    }
    if let Some(t) = a.events.iter().find_map(|e| e.time) {
        links.push(format!("{} UTC", date(t)));
    }
    if !links.is_empty() {
        let _ = writeln!(s, "   {}", links.join(" · "));
    }
    let timed = a.events.iter().any(|e| e.time.is_some());
    let _ = writeln!(
        s,
        "{}",
        st.dim(&format!(
            "   {:>7}  {}{:<9}  {:<12}  {:<10}  {}",
            "frame",
            if timed { format!("{:<15}  ", "time") } else { String::new() },
            "from",
            "PDUs",
            "turn after",
            "notes"
        ))
    );
    let mut i = 0;
    while i < a.events.len() {
        let e = &a.events[i];
        let mut j = i + 1;
        while j < a.events.len() && same_run(e, &a.events[j]) {
            j += 1;
        }
        let run = j - i;
        let mut pdus = e.pdus.join(",");
        let mut note = e.note.clone();
        if run >= 3 {
            pdus = format!("{pdus} ×{run}");
            note = format!("to frame {}", a.events[j - 1].frame);
        } else {
            j = i + 1;
        }
        let time = match (timed, e.time) {
            (true, Some(t)) => format!("{}  ", clock(t)),
            (true, None) => format!("{:15}  ", ""),
            _ => String::new(),
        };
        let from = match e.from {
            Side::Initiator => "initiator",
            Side::Responder => "responder",
        };
        let transport = e.pdus.iter().all(|p| p.starts_with("T-"));
        let pdus_cell = format!("{pdus:<12}");
        let pdus_cell = if transport { st.dim(&pdus_cell) } else { st.bold(&pdus_cell) };
        let mut line = format!("   {:>7}  {time}{from:<9}  {pdus_cell}  {}  {note}", e.frame, st.holder(e.turn, 10));
        if !e.anomalies.is_empty() {
            let kinds: Vec<&str> = e.anomalies.iter().map(|k| k.name()).collect();
            line = format!("{}  {}", line.trim_end(), st.red(&format!("◀ {}", kinds.join(", "))));
        }
        let _ = writeln!(s, "{}", line.trim_end());
        i = j;
    }
    if a.info.dropped_rows > 0 {
        let _ = writeln!(s, "   … {} more rows not kept", a.info.dropped_rows);
    }
    if a.anomalies.is_empty() {
        let _ = writeln!(s, "   no anomaly");
    } else {
        let _ = writeln!(
            s,
            "   {}",
            st.red(&format!("{} anomal{}:", a.anomalies.len(), if a.anomalies.len() == 1 { "y" } else { "ies" }))
        );
        for an in &a.anomalies {
            let by = an.by.map_or_else(String::new, |b| format!(" by {b}"));
            let _ = writeln!(s, "   {} frame {}{by}: {}", st.red(&format!("✗ {}", an.kind)), an.frame, an.detail);
        }
        if a.info.dropped_anomalies > 0 {
            let _ = writeln!(s, "   … {} more anomalies not kept", a.info.dropped_anomalies);
        }
    }
    s
}
