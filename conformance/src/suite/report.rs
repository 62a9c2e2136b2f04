//! Reports of a run: the terminal table (grouped by area), JSON, JUnit XML
//! (fail as `failure`, error and inconclusive as `error`, skipped as
//! `skipped`) and an HTML page (summary, then per non-passing case its
//! reason, seed, trace and an SVG sequence diagram).

use super::case::Case;
use super::declare::Grade;
use super::run::{CaseResult, TraceLine, Verdict};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write;

/// One graded result.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Row {
    #[serde(flatten)]
    pub result: CaseResult,
    pub grade: Grade,
    /// The declared verdict, when a divergence is declared.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<Verdict>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_reason: Option<String>,
}

/// A whole run against one IUT.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    pub iut: String,
    pub rows: Vec<Row>,
    /// Declaration entries naming no case.
    pub stale: Vec<String>,
}

/// Counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    pub total: usize,
    pub pass: usize,
    pub fail: usize,
    pub inconclusive: usize,
    pub error: usize,
    pub skipped: usize,
    pub known_divergence: usize,
    pub unexpected: usize,
    pub stale: usize,
}

impl Report {
    /// Counts by verdict and grade.
    #[must_use]
    pub fn summary(&self) -> Summary {
        let mut s = Summary { total: self.rows.len(), stale: self.stale.len(), ..Summary::default() };
        for r in &self.rows {
            match r.result.verdict {
                Verdict::Pass => s.pass += 1,
                Verdict::Fail => s.fail += 1,
                Verdict::Inconclusive => s.inconclusive += 1,
                Verdict::Error => s.error += 1,
                Verdict::Skipped => s.skipped += 1,
            }
            if r.grade == Grade::KnownDivergence {
                s.known_divergence += 1;
            }
            if r.grade.unexpected() {
                s.unexpected += 1;
            }
        }
        s
    }

    /// Everything as expected (no unexpected grade, no stale entry).
    #[must_use]
    pub fn ok(&self) -> bool {
        self.stale.is_empty() && !self.rows.iter().any(|r| r.grade.unexpected())
    }

    /// JSON: `{"iut", "cases": [{"id", "verdict", "reason", "seed", ...}], "summary"}`.
    #[must_use]
    pub fn json(&self) -> serde_json::Value {
        let cases: Vec<serde_json::Value> = self
            .rows
            .iter()
            .map(|r| {
                serde_json::json!({
                    "id": r.result.id,
                    "verdict": r.result.verdict,
                    "grade": r.grade,
                    "kind": r.result.kind,
                    "reason": r.result.reason,
                    "seed": r.result.seed,
                    "expected": r.expected,
                    "expected_reason": r.expected_reason,
                    "trace": r.result.trace.iter().map(ToString::to_string).collect::<Vec<_>>(),
                })
            })
            .collect();
        serde_json::json!({ "iut": self.iut, "cases": cases, "summary": self.summary(), "stale": self.stale })
    }

    /// JUnit XML.
    pub fn junit(&self) -> Result<String, String> {
        use quick_junit::{NonSuccessKind, Report as JReport, TestCase, TestCaseStatus, TestSuite};
        let mut groups: BTreeMap<&str, Vec<&Row>> = BTreeMap::new();
        for r in &self.rows {
            groups.entry(r.result.id.split('.').next().unwrap_or("")).or_default().push(r);
        }
        let mut rep = JReport::new(format!("rtse conformance: {}", self.iut));
        for (area, rows) in groups {
            let mut suite = TestSuite::new(area);
            for r in rows {
                let reason = r.result.reason.clone().unwrap_or_default();
                let mut status = match (r.result.verdict, r.grade) {
                    (_, Grade::KnownDivergence) => {
                        let mut s = TestCaseStatus::skipped();
                        s.set_message(format!(
                            "known divergence ({}): {}",
                            r.result.verdict.name(),
                            r.expected_reason.as_deref().unwrap_or("")
                        ));
                        s
                    }
                    (Verdict::Pass, Grade::UnexpectedPass) => {
                        let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                        s.set_message("unexpected pass: the declared divergence is gone; update the declaration");
                        s
                    }
                    (Verdict::Pass, _) => TestCaseStatus::success(),
                    (Verdict::Skipped, _) => {
                        let mut s = TestCaseStatus::skipped();
                        s.set_message(reason.clone());
                        s
                    }
                    (Verdict::Fail, _) => {
                        let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                        s.set_message(reason.clone());
                        s
                    }
                    (Verdict::Error | Verdict::Inconclusive, _) => {
                        let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
                        s.set_message(format!("{}: {reason}", r.result.verdict.name()));
                        s
                    }
                };
                if !matches!(r.result.verdict, Verdict::Pass | Verdict::Skipped) {
                    let trace: Vec<String> = r.result.trace.iter().map(ToString::to_string).collect();
                    status.set_description(format!("seed {}\n{}", r.result.seed, trace.join("\n")));
                }
                let mut tc = TestCase::new(r.result.id.clone(), status);
                tc.set_classname(area);
                suite.add_test_case(tc);
            }
            rep.add_test_suite(suite);
        }
        rep.to_string().map_err(|e| e.to_string())
    }

    /// HTML page.
    #[must_use]
    pub fn html(&self, cases: &[Case]) -> String {
        let s = self.summary();
        let mut h = String::new();
        let _ = write!(
            h,
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>rtse conformance: {iut}</title><style>\
body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:2px 8px;text-align:left}}\
.pass{{color:#070}}.fail{{color:#b00}}.inconclusive,.error{{color:#a60}}.skipped{{color:#777}}pre{{background:#f6f6f6;padding:8px}}\
</style></head><body><h1>rtse conformance: {iut}</h1><p>{total} cases: {pass} pass, {fail} fail, {inc} inconclusive, {err} error, \
{skip} skipped; {known} known divergences; <b>{unexp} unexpected</b>; {stale} stale declaration entries.</p>",
            iut = esc(&self.iut),
            total = s.total,
            pass = s.pass,
            fail = s.fail,
            inc = s.inconclusive,
            err = s.error,
            skip = s.skipped,
            known = s.known_divergence,
            unexp = s.unexpected,
            stale = s.stale,
        );
        h += "<table><tr><th>case</th><th>verdict</th><th>grade</th><th>reason</th></tr>";
        for r in &self.rows {
            let v = r.result.verdict.name();
            let _ = write!(
                h,
                "<tr><td><a href=\"#{id}\">{id}</a></td><td class=\"{v}\">{v}</td><td>{g:?}</td><td>{reason}</td></tr>",
                id = esc(&r.result.id),
                g = r.grade,
                reason = esc(r.result.reason.as_deref().unwrap_or(""))
            );
        }
        h += "</table>";
        for r in self.rows.iter().filter(|r| !matches!(r.result.verdict, Verdict::Pass | Verdict::Skipped)) {
            let c = cases.iter().find(|c| c.id == r.result.id);
            let _ = write!(
                h,
                "<h2 id=\"{id}\">{id}: <span class=\"{v}\">{v}</span></h2><p><i>{req}</i> ({clause})</p><p>{reason}</p><p>seed {seed}</p>",
                id = esc(&r.result.id),
                v = r.result.verdict.name(),
                req = esc(c.map_or("", |c| c.requirement.as_str())),
                clause = esc(c.map_or("", |c| c.clause.as_str())),
                reason = esc(r.result.reason.as_deref().unwrap_or("")),
                seed = r.result.seed,
            );
            h += &sequence_svg(&r.result.trace);
            h += "<pre>";
            for t in &r.result.trace {
                h += &esc(&t.to_string());
                h.push('\n');
            }
            h += "</pre>";
        }
        h += "</body></html>\n";
        h
    }

    /// The terminal table, grouped by area, then the summary line.
    pub fn table(&self, w: &mut dyn Write, color: bool, verbose: bool) -> std::io::Result<()> {
        let paint = |v: Verdict, s: &str| -> String {
            if !color {
                return s.to_owned();
            }
            let code = match v {
                Verdict::Pass => "32",
                Verdict::Fail => "31",
                Verdict::Inconclusive | Verdict::Error => "33",
                Verdict::Skipped => "90",
            };
            format!("\x1b[{code}m{s}\x1b[0m")
        };
        writeln!(w, "IUT {}", self.iut)?;
        let mut areas: Vec<&str> = Vec::new();
        for r in &self.rows {
            let a = r.result.id.split('.').next().unwrap_or("");
            if !areas.contains(&a) {
                areas.push(a);
            }
        }
        let mut ordered: Vec<&Row> = Vec::with_capacity(self.rows.len());
        for a in &areas {
            ordered.extend(self.rows.iter().filter(|r| r.result.id.split('.').next() == Some(a)));
        }
        let mut area = "";
        for r in ordered {
            let a = r.result.id.split('.').next().unwrap_or("");
            if a != area {
                area = a;
                let n = self.rows.iter().filter(|x| x.result.id.split('.').next() == Some(a)).count();
                let p = self
                    .rows
                    .iter()
                    .filter(|x| x.result.id.split('.').next() == Some(a) && x.result.verdict == Verdict::Pass)
                    .count();
                writeln!(w, "  {a} ({p}/{n} pass)")?;
            }
            let show = verbose || r.result.verdict != Verdict::Pass || r.grade != Grade::Pass;
            if !show {
                continue;
            }
            let v = r.result.verdict;
            let tag = match r.grade {
                Grade::KnownDivergence => " (known divergence)",
                Grade::UnexpectedPass => " (UNEXPECTED PASS: update the declaration)",
                Grade::UnexpectedFailure => " (unexpected)",
                _ => "",
            };
            writeln!(w, "    {:<13} {}{tag}", paint(v, v.name()), r.result.id)?;
            if let Some(reason) = &r.result.reason {
                if v != Verdict::Pass {
                    writeln!(w, "                  {reason} (seed {})", r.result.seed)?;
                }
            }
        }
        for s in &self.stale {
            writeln!(w, "  stale declaration entry: {s}")?;
        }
        let s = self.summary();
        writeln!(
            w,
            "{} cases: {} pass, {} fail, {} inconclusive, {} error, {} skipped; {} known divergences, {} unexpected, {} stale",
            s.total, s.pass, s.fail, s.inconclusive, s.error, s.skipped, s.known_divergence, s.unexpected, s.stale
        )
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A two-lifeline sequence diagram of a trace.
#[must_use]
pub fn sequence_svg(trace: &[TraceLine]) -> String {
    let (left, right, row) = (120, 520, 22);
    let height = 50 + row * trace.len() as i32;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"700\" height=\"{height}\" font-family=\"monospace\" font-size=\"12\">\
<text x=\"{left}\" y=\"16\" text-anchor=\"middle\">tester</text><text x=\"{right}\" y=\"16\" text-anchor=\"middle\">IUT</text>\
<line x1=\"{left}\" y1=\"22\" x2=\"{left}\" y2=\"{height}\" stroke=\"#999\"/><line x1=\"{right}\" y1=\"22\" x2=\"{right}\" y2=\"{height}\" stroke=\"#999\"/>"
    );
    for (i, t) in trace.iter().enumerate() {
        let y = 40 + row * i as i32;
        let (x1, x2) = if t.from == "tester" { (left, right) } else { (right, left) };
        let transport = matches!(t.what.as_str(), "T-OPEN" | "FIN" | "RST");
        let color = if transport { "#a60" } else { "#000" };
        let _ = write!(
            s,
            "<line x1=\"{x1}\" y1=\"{y}\" x2=\"{x2}\" y2=\"{y}\" stroke=\"{color}\"/>\
<polygon points=\"{x2},{y} {a},{b} {a},{c}\" fill=\"{color}\"/>\
<text x=\"{mid}\" y=\"{ty}\" text-anchor=\"middle\" fill=\"{color}\">#{conn} {what}</text>\
<text x=\"4\" y=\"{y}\" fill=\"#777\">{ms:.1}ms</text>",
            a = if x2 > x1 { x2 - 8 } else { x2 + 8 },
            b = y - 4,
            c = y + 4,
            mid = (left + right) / 2,
            ty = y - 3,
            conn = t.conn,
            what = esc(&t.what),
            ms = t.time_ns as f64 / 1e6,
        );
    }
    s += "</svg>";
    s
}
