//! `rtse bench timeline`: builds large captures by replaying the RTSE
//! captures of the corpus and the synthetic scenarios with distinct
//! endpoints, then times `rtse timeline --format json` against
//! `tshark -T fields` over the same layers, in the same run, and prints
//! the time ratio, each side's peak memory, and how our time scales with
//! size.
//!
//! Both tools run as child processes with their output to /dev/null.
//! Each side's time is a median, ours of [`OUR_RUNS`] runs, tshark's of
//! [`TSHARK_RUNS`], the runs interleaved (the machine may be shared: a
//! burst of load then hits both sides); the ratio is of the medians. Peak
//! memory (maximum RSS) comes from `/usr/bin/time -v`. Our timed runs are
//! not wrapped in it: starting and waiting for the wrapper costs about a
//! millisecond (`/usr/bin/time -v true` against `true`), some 3 % of our
//! time at 10 MB, which belongs to neither tool; one more run of ours
//! under the wrapper gives our peak. tshark's runs are timed under the
//! wrapper, which gives its peak too: a millisecond is 0.03 % of its
//! seconds, and a fourth run would cost seconds more. tshark runs only on
//! captures up to `--tshark-max-mb` (it is slow and its memory grows with
//! the file).

use crate::synth::{scenario, Pdus};
use rtse_codec::capture::stacks::ISO_TSAP_PORT;
use rtse_codec::capture::write::{FrameSink, PcapWriter, TcpConversation};
use rtse_codec::capture::{read_capture, CloseHow, Direction, StreamEvent, Timestamp};
use std::io::{BufWriter, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// One TCP connection of a source capture, as its sequence of payloads.
#[derive(Debug, Clone)]
struct Recorded {
    client_port: u16,
    server_port: u16,
    data: Vec<(Direction, Vec<u8>)>,
    close: CloseHow,
}

/// The connections of a capture that carry TPKTs (client or server on port
/// 102), in order of appearance.
fn record(cap: &[u8]) -> Vec<Recorded> {
    let mut conns: Vec<(u64, Recorded)> = Vec::new();
    let _ = read_capture(cap, |ev| match ev {
        StreamEvent::Open { conn, key, .. }
            if key.server.port() == ISO_TSAP_PORT || key.client.port() == ISO_TSAP_PORT =>
        {
            conns.push((
                conn,
                Recorded {
                    client_port: key.client.port(),
                    server_port: key.server.port(),
                    data: Vec::new(),
                    close: CloseHow::Eof,
                },
            ));
        }
        StreamEvent::Data { conn, dir, bytes, .. } => {
            if let Some((_, r)) = conns.iter_mut().find(|(c, _)| *c == conn) {
                r.data.push((dir, bytes.to_vec()));
            }
        }
        StreamEvent::Close { conn, how, .. } => {
            if let Some((_, r)) = conns.iter_mut().find(|(c, _)| *c == conn) {
                r.close = how;
            }
        }
        _ => {}
    });
    conns.into_iter().map(|(_, r)| r).collect()
}

fn host(k: u32, side: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, (k >> 8) as u8 & 0x7f | 0x80, k as u8, side))
}

/// Writes a pcap of about `target` octets into `path`; returns the number
/// of copies of the source set written.
fn build(path: &Path, target: u64, sources: &[Vec<Recorded>]) -> std::io::Result<u32> {
    let file = std::fs::File::create(path)?;
    let mut w = PcapWriter::new(BufWriter::with_capacity(1 << 20, file), 1, Default::default())?;
    let mut written: u64 = 24;
    let mut t = Timestamp::new(1_735_732_800, 0);
    let mut k = 0u32;
    let mut frames = Vec::new();
    while written < target {
        k += 1;
        // The recorded real captures, each connection on its own endpoints.
        for src in sources {
            for (j, r) in src.iter().enumerate() {
                let c = SocketAddr::new(host(k, 1), r.client_port.wrapping_add(j as u16));
                let s = SocketAddr::new(host(k, 2), r.server_port);
                let mut conv = TcpConversation::new(c, s).with_time(t, 1_000_000);
                conv.syn();
                for (d, b) in &r.data {
                    conv.send(*d, b);
                    conv.ack(match d {
                        Direction::ToServer => Direction::ToClient,
                        Direction::ToClient => Direction::ToServer,
                    });
                }
                match r.close {
                    CloseHow::Rst => {
                        conv.rst(Direction::ToServer);
                    }
                    _ => {
                        conv.close();
                    }
                }
                frames.extend(conv.take_frames());
                t = frames.last().map_or(t, |f| Timestamp::from_nanos(f.time.as_nanos() + 1_000_000));
            }
        }
        // The synthetic scenarios, with references unique to this copy.
        for (m, pdus) in [Pdus::normal(), Pdus::x410()].into_iter().enumerate() {
            let place = scenario::Place {
                a: SocketAddr::new(host(k, 3 + m as u8), 40_001),
                b: SocketAddr::new(host(k, 10), 102),
                start: t,
                tag: format!("K{k}M{m}S"),
            };
            for (_, convs) in scenario::all(&place, pdus) {
                let mut fs: Vec<_> = convs.iter().flat_map(crate::synth::frames).collect();
                // Shift to start now (scenarios start at their own place time).
                let base = fs.iter().map(|f| f.time.as_nanos()).min().unwrap_or(0);
                for f in &mut fs {
                    f.time = Timestamp::from_nanos(f.time.as_nanos() - base + t.as_nanos());
                }
                fs.sort_by_key(|f| f.time);
                t = fs.last().map_or(t, |f| Timestamp::from_nanos(f.time.as_nanos() + 1_000_000));
                frames.extend(fs);
            }
        }
        for f in frames.drain(..) {
            w.write_frame(f.time, &f.data, f.orig_len)?;
            written += 16 + f.data.len() as u64;
        }
    }
    w.into_inner()?.flush()?;
    Ok(k)
}

/// Wall time of a child process, and its peak RSS when it ran under
/// `/usr/bin/time -v`.
#[derive(Debug, Clone, Copy)]
pub struct Measured {
    pub seconds: f64,
    pub peak_kib: Option<u64>,
}

/// Runs `program` with `args`, under `/usr/bin/time -v` when `peak` asks
/// for its peak memory (and the wrapper is installed), else directly.
fn measure(program: &Path, args: &[&str], peak: bool) -> Result<Measured, String> {
    let timed = peak && Path::new("/usr/bin/time").exists();
    let mut cmd = if timed {
        let mut c = Command::new("/usr/bin/time");
        c.arg("-v").arg(program);
        c
    } else {
        Command::new(program)
    };
    cmd.args(args).stdout(Stdio::null()).stderr(Stdio::piped());
    let start = Instant::now();
    let out = cmd.output().map_err(|e| format!("cannot run {}: {e}", program.display()))?;
    let seconds = start.elapsed().as_secs_f64();
    let err = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(format!("{} failed: {}", program.display(), err.lines().last().unwrap_or("")));
    }
    let peak_kib = err
        .lines()
        .find_map(|l| l.trim().strip_prefix("Maximum resident set size (kbytes):"))
        .and_then(|v| v.trim().parse().ok());
    Ok(Measured { seconds, peak_kib })
}

/// The first three fields of /proc/loadavg (Linux), if readable.
fn load_average() -> Option<String> {
    let s = std::fs::read_to_string("/proc/loadavg").ok()?;
    let v: Vec<&str> = s.split_whitespace().take(3).collect();
    (v.len() == 3).then(|| v.join(" "))
}

/// Timed runs of `rtse timeline` per capture size (the median is
/// reported). A run takes some 30 ms at 10 MB, and on a 2-core virtual
/// machine runs of one binary spread from 23 to 46 ms: a median of 11 is
/// steadier than one of 5 and costs a third of a second.
pub const OUR_RUNS: usize = 11;
/// Runs of tshark per capture size (the median is reported; tshark takes
/// seconds per run at 10 MB, and on a shared virtual machine its runs
/// spread from 3.0 to 4.9 s within a minute: a median of 3 moved the ratio
/// by a third between two benchmark runs).
pub const TSHARK_RUNS: usize = 5;

/// After which of our runs (0-based) tshark's run `j` comes: tshark's
/// runs spread evenly among ours; `usize::MAX` once all are done.
fn tshark_after(j: usize) -> usize {
    if j < TSHARK_RUNS {
        j * OUR_RUNS / TSHARK_RUNS
    } else {
        usize::MAX
    }
}

/// The median time of `runs` (the upper one of an even count), with the
/// highest peak memory of them all.
fn median(runs: &[Measured]) -> Measured {
    let mut t: Vec<f64> = runs.iter().map(|m| m.seconds).collect();
    t.sort_by(f64::total_cmp);
    Measured {
        seconds: t.get(t.len() / 2).copied().unwrap_or(0.0),
        peak_kib: runs.iter().filter_map(|m| m.peak_kib).max(),
    }
}

/// tshark over the layers the timeline reads.
pub const TSHARK_FIELDS: &[&str] = &[
    "frame.number",
    "frame.time_epoch",
    "tcp.stream",
    "ses.type",
    "ses.calling_ss_user_reference",
    "ses.common_reference",
    "rtse.rtorq_apdu_element",
    "rtse.rtoac_apdu_element",
    "rtse.rtorj_apdu_element",
    "rtse.rttp_apdu",
    "rtse.rttr_apdu",
    "rtse.rtab_apdu_element",
    "rtse.recover_element",
];

fn mib(k: Option<u64>) -> String {
    k.map_or_else(|| "?".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0))
}

/// Options of `rtse bench timeline`.
#[derive(Debug, Clone)]
pub struct Options {
    /// Capture sizes in MB (10^6 octets).
    pub sizes: Vec<f64>,
    /// Where to write them (default: a new temporary directory).
    pub dir: Option<PathBuf>,
    /// Run tshark only on captures up to this size (MB).
    pub tshark_max_mb: f64,
    /// Keep the captures.
    pub keep: bool,
    /// The corpus directory with the real captures.
    pub corpus: PathBuf,
}

/// Runs the benchmark, printing to `out`.
pub fn timeline(o: &Options, out: &mut dyn Write) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find rtse itself: {e}"))?;
    let dir = match &o.dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("rtse-bench-timeline-{}", std::process::id())),
    };
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut sources = Vec::new();
    for name in ["x400-ping-refuse.pcap", "x400-ping-success.pcap", "p772-transfer-success.pcap"] {
        let p = o.corpus.join(name);
        let data = std::fs::read(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        sources.push(record(&data));
    }
    let synthetic: usize = [Pdus::normal(), Pdus::x410()]
        .iter()
        .map(|p| scenario::all(&scenario::Place::default(), *p).iter().map(|(_, c)| c.len()).sum::<usize>())
        .sum();
    let per_copy = (sources.iter().map(Vec::len).sum::<usize>() + synthetic) as u64;
    let tshark = crate::tshark::available();
    let _ = writeln!(out, "rtse bench timeline: captures in {}", dir.display());
    if let Some(l) = load_average() {
        // Wall times on a loaded machine are noisy: say how loaded it was.
        let _ = writeln!(out, "load average (1, 5, 15 min) at the start: {l}");
    }
    if !tshark {
        let _ = writeln!(out, "tshark not found: our side only");
    }
    let _ = writeln!(
        out,
        "{:>8}  {:>6}  {:>9}  {:>10}  {:>9}  {:>10}  {:>8}",
        "size", "assoc.", "rtse", "rtse peak", "tshark", "tshark peak", "ratio"
    );
    let _ = writeln!(
        out,
        "(times: medians of {OUR_RUNS} rtse and {TSHARK_RUNS} tshark runs, interleaved; ratio of the medians)"
    );
    let mut ours: Vec<(f64, f64)> = Vec::new();
    let mut ok = true;
    for &mb in &o.sizes {
        let path = dir.join(format!("timeline-{mb}MB.pcap"));
        let copies = build(&path, (mb * 1e6) as u64, &sources).map_err(|e| format!("{}: {e}", path.display()))?;
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0) as f64 / 1e6;
        let p = path.to_string_lossy().into_owned();
        // Medians (the machine may be shared): ours of OUR_RUNS runs,
        // tshark's of TSHARK_RUNS, interleaved so that a burst of load
        // from elsewhere hits both sides alike.
        let run_tshark = tshark && mb <= o.tshark_max_mb;
        let mut targs: Vec<&str> = vec!["-r", &p, "-n", "-T", "fields"];
        for f in TSHARK_FIELDS {
            targs.push("-e");
            targs.push(f);
        }
        let mut mine = Vec::with_capacity(OUR_RUNS);
        let mut theirs = Vec::with_capacity(TSHARK_RUNS);
        let our_args = ["timeline", &p, "--format", "json", "--color", "never"];
        // Our peak memory, from one run under the wrapper (not timed).
        let our_peak = measure(&exe, &our_args, true)?.peak_kib;
        for i in 0..OUR_RUNS {
            mine.push(measure(&exe, &our_args, false)?);
            if run_tshark && i == tshark_after(theirs.len()) {
                theirs.push(measure(Path::new("tshark"), &targs, true)?);
            }
        }
        let r = Measured { peak_kib: our_peak, ..median(&mine) };
        ours.push((size, r.seconds));
        let assocs = u64::from(copies) * per_copy;
        let t = (!theirs.is_empty()).then(|| median(&theirs));
        let _ = writeln!(
            out,
            "{:>6.1}MB  {:>6}  {:>8.3}s  {:>10}  {:>9}  {:>10}  {:>8}",
            size,
            assocs,
            r.seconds,
            mib(r.peak_kib),
            t.map_or_else(|| "-".into(), |t| format!("{:.2}s", t.seconds)),
            t.map_or_else(|| "-".into(), |t| mib(t.peak_kib)),
            t.map_or_else(|| "-".into(), |t| format!("{:.0}x", t.seconds / r.seconds.max(1e-9)))
        );
        if r.peak_kib.is_some_and(|k| k > 50 * 1024) {
            let _ = writeln!(out, "  target missed: peak memory {} >= 50 MiB", mib(r.peak_kib));
            ok = false;
        }
        if let Some(t) = t {
            if t.seconds / r.seconds.max(1e-9) < 100.0 {
                let _ = writeln!(out, "  target missed: less than 100x faster than tshark");
                ok = false;
            }
        }
        if !o.keep {
            let _ = std::fs::remove_file(&path);
        }
    }
    if let (Some(first), Some(last)) = (ours.first(), ours.last()) {
        if ours.len() > 1 && first.0 > 0.0 {
            let size_ratio = last.0 / first.0;
            let time_ratio = last.1 / first.1.max(1e-9);
            let _ = writeln!(
                out,
                "scaling: {:.1}x the size took {:.2}x the time (linear would be {:.1}x; target within {:.1}x)",
                size_ratio,
                time_ratio,
                size_ratio,
                size_ratio * 6.5 / 6.0
            );
            if time_ratio > size_ratio * 6.5 / 6.0 {
                ok = false;
            }
        }
    }
    if !o.keep && o.dir.is_none() {
        let _ = std::fs::remove_dir(&dir);
    }
    if let Some(l) = load_average() {
        let _ = writeln!(out, "load average (1, 5, 15 min) at the end: {l}");
    }
    let _ = writeln!(out, "{}", if ok { "all targets met" } else { "some targets missed" });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tshark_runs_spread_among_ours() {
        let at: Vec<usize> = (0..=TSHARK_RUNS).map(tshark_after).collect();
        assert_eq!(at[TSHARK_RUNS], usize::MAX, "no run beyond TSHARK_RUNS");
        let runs = &at[..TSHARK_RUNS];
        assert!(runs.windows(2).all(|w| w[0] < w[1]), "{runs:?}");
        assert!(runs.iter().all(|&i| i < OUR_RUNS), "{runs:?}");
        // Every run happens in the loop over ours: each index is met once.
        let met = (0..OUR_RUNS).filter(|i| runs.contains(i)).count();
        assert_eq!(met, TSHARK_RUNS);
    }

    #[test]
    fn median_is_the_middle_time_with_the_highest_peak() {
        let m = |seconds, peak_kib| Measured { seconds, peak_kib };
        let r = median(&[m(3.0, None), m(1.0, Some(10)), m(2.0, Some(30)), m(9.0, None), m(4.0, None)]);
        assert_eq!(r.seconds, 3.0);
        assert_eq!(r.peak_kib, Some(30));
    }

    #[test]
    fn only_a_peak_run_goes_through_the_wrapper() {
        let direct = measure(Path::new("true"), &[], false).unwrap();
        assert_eq!(direct.peak_kib, None);
        let wrapped = measure(Path::new("true"), &[], true).unwrap();
        assert_eq!(wrapped.peak_kib.is_some(), Path::new("/usr/bin/time").exists());
        assert!(measure(Path::new("false"), &[], false).is_err());
    }
}
