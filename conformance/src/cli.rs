//! The `rtse` command line: argument definitions and dispatch. Thin: every
//! subcommand calls a library function that tests call too.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::io::Write;

/// Exit codes, a contract scripts rely on (see the README).
pub mod exit {
    /// Everything decoded / every verdict as expected.
    pub const OK: u8 = 0;
    /// The input did not decode (decode), or a verdict was unexpected (run).
    pub const FAIL: u8 = 1;
    /// Usage or I/O error.
    pub const USAGE: u8 = 2;
    /// `rtse timeline --fail-on-anomaly` found an anomaly.
    pub const ANOMALY: u8 = 3;
    /// No test case selected.
    pub const NO_CASES: u8 = 4;
}

#[derive(Debug, Parser)]
#[command(
    name = "rtse",
    version,
    about = "Decode, conformance-test and fuzz the Turn handling of OSI RTSE (X.228 / X.410-1984) between X.400 MTAs",
    long_about = "rtse-lab: decode RFC 1006 / X.224 / X.225 / X.226 / X.227 / X.228 / P1 traffic, \
follow who holds the RTSE Turn, and test MTA implementations against association loss.\n\n\
Exit codes: 0 success, 1 input did not decode or a verdict was unexpected, 2 usage or I/O error, \
3 anomaly found (timeline --fail-on-anomaly), 4 no test case selected."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Decode PDUs (hex, raw bytes or a pcap/pcapng capture) through every layer.
    #[command(long_about = DECODE_HELP)]
    Decode(DecodeArgs),
    /// Per-association Turn timeline of a capture: who held the Turn, when it was lost, which association recovered which.
    #[command(long_about = TIMELINE_HELP)]
    Timeline(TimelineArgs),
    /// Run the conformance suite: with no IUT, the reference MTA and every flaw (the matrix).
    #[command(long_about = RUN_HELP)]
    Run(crate::suite::cmd::RunArgs),
    /// List the conformance cases or show one.
    #[command(subcommand)]
    Cases(crate::suite::cmd::CasesCommand),
    /// Run the reference MTA (or a flaw) over RFC 1006 TCP, listening (--listen) or connecting (--connect).
    #[command(long_about = crate::suite::cmd::SERVE_HELP)]
    Serve(crate::suite::cmd::ServeArgs),
    /// Benchmarks, printing their figures (build with --release).
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Deterministic simulation of two MTAs with association loss; checks the Turn invariants.
    #[command(long_about = SIM_HELP)]
    Sim(SimArgs),
    /// A fault-injecting RFC 1006 relay between two real MTAs, with the live Turn timeline.
    #[command(long_about = crate::proxy::PROXY_HELP)]
    Proxy(crate::proxy::ProxyArgs),
}

const SIM_HELP: &str = "Simulate two MTAs (the reference MTA or a named flaw on either side) over a virtual \
network that loses the association where the scenario says (before/after a PDU, mid-TPKT, at a time, at \
random; FIN, RST, session abort, RT-U-ABORT), then a healthy phase in which every message must arrive. \
The run is a pure function of (seed, scenario).\n\n\
Invariants: one-holder, only-holder-sends, holder-after-recovery, exactly-once, please-answered (the Turn \
tracker on the PDUs delivered), exactly-once and backlog-drains (the MTAs' records). On a violation it \
prints the invariant, the PDU trace and the command that replays the run.\n\n\
--scenario is a built-in name (exchange, turn-give, large, x410, field-failure, random) or a TOML file \
(see docs/simulator.md and conformance/scenarios/).\n\n\
Exit codes: 0 every invariant holds; 1 a violation; 2 usage or I/O error.\n\n\
Examples:\n  rtse sim --seed 0x2a --scenario random\n  \
rtse sim --seed 1 --scenario field-failure --flaw-a forgets-given-turn --pcapng ff.pcapng";

#[derive(Debug, Args)]
pub struct SimArgs {
    /// PRNG seed (decimal or 0x hex).
    #[arg(long, value_name = "SEED", default_value = "0", value_parser = parse_seed)]
    pub seed: u64,
    /// Built-in scenario name or TOML file.
    #[arg(long, value_name = "NAME-or-FILE")]
    pub scenario: String,
    /// Put this flaw on MTA A ('reference' for none), overriding the scenario.
    #[arg(long, value_name = "FLAW")]
    pub flaw_a: Option<String>,
    /// Put this flaw on MTA B ('reference' for none), overriding the scenario.
    #[arg(long, value_name = "FLAW")]
    pub flaw_b: Option<String>,
    /// Write the run as pcapng (both directions, each connection its own TCP ports).
    #[arg(long, value_name = "FILE")]
    pub pcapng: Option<std::path::PathBuf>,
    /// Print the trace even when every invariant holds (with --hex: each TPKT in hex).
    #[arg(long)]
    pub trace: bool,
    /// With --trace: each TPKT's octets in hex.
    #[arg(long)]
    pub hex: bool,
}

fn parse_seed(s: &str) -> Result<u64, String> {
    let r = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(&h.replace('_', ""), 16),
        None => s.replace('_', "").parse(),
    };
    r.map_err(|e| format!("{s:?}: {e}"))
}

const RUN_HELP: &str = "Run the conformance suite.\n\n\
Without --iut: the main job. The suite runs against the in-process reference MTA (which must pass every \
case) and against each named flaw (each must fail at least one case); the matrix says which cases catch \
which flaw. With --iut reference, flaw:NAME or tcp://HOST:PORT (an RFC 1006 responder such as `rtse serve`) \
and optionally --declare FILE (capabilities and expected divergences with reasons), one IUT is graded.\n\n\
Verdicts: pass, fail, inconclusive (preamble failed), error (adapter fault), skipped (capability not declared).\n\
Exit codes: 0 every verdict as expected, 1 anything unexpected (or a stale declaration entry), \
2 usage or I/O error, 4 no case selected. See docs/conformance.md.";

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Build ~10 MB and ~60 MB captures (corpus RTSE captures and synthetic scenarios replayed with distinct
    /// endpoints), time `rtse timeline --format json` against `tshark -T fields` over the same layers, print
    /// the ratio, each side's peak memory (/usr/bin/time -v) and how our time scales with size.
    Timeline(BenchTimelineArgs),
    /// Cases per second for the whole conformance suite, in process and over loopback TCP.
    Suite,
    /// rtse proxy over loopback against a direct connection, in the same run: throughput, added latency per
    /// PDU, connections held at once and the proxy's memory.
    Proxy(BenchProxyArgs),
}

#[derive(Debug, Args)]
pub struct BenchProxyArgs {
    /// Megabytes streamed per throughput run.
    #[arg(long, default_value_t = 256)]
    pub mb: u64,
    /// Round trips per latency run.
    #[arg(long, default_value_t = 5000)]
    pub pings: usize,
    /// Throughput rounds (direct, bare relay, proxy interleaved; the best of each).
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
    /// Connections held open at once.
    #[arg(long, default_value_t = 1000)]
    pub conns: usize,
    /// The rtse binary run as the proxy (default: this one).
    #[arg(long, value_name = "PATH")]
    pub rtse: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
pub struct BenchTimelineArgs {
    /// Capture sizes in MB, comma-separated (`--sizes 10,60,200`).
    #[arg(long, value_delimiter = ',', default_values_t = [10.0, 60.0])]
    pub sizes: Vec<f64>,
    /// Directory for the captures (default: a temporary one, removed after).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<std::path::PathBuf>,
    /// Run tshark only on captures up to this many MB (it is slow).
    #[arg(long, value_name = "MB", default_value_t = 10.0)]
    pub tshark_max_mb: f64,
    /// Keep the captures.
    #[arg(long)]
    pub keep: bool,
    /// Directory of the real captures.
    #[arg(long, value_name = "DIR", default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../corpus/captures"))]
    pub corpus: std::path::PathBuf,
}

const DECODE_HELP: &str = "Decode PDUs through every layer: TPKT, X.224 (cotp), session, presentation, \
ACSE, RTSE or X.410, P1.\n\n\
INPUT is a file or '-' for stdin. Its content may be hex text (white space, ':' and '-' ignored), \
raw bytes, or a pcap/pcapng capture (recognised by its magic). --hex takes the bytes on the command line.\n\n\
By default the layer the bytes start at is recognised: a TPKT stream (03 00 ...), else a TSDU \
(session SPDUs), else a BER value (an RTSE APDU, ACSE APDU or presentation PPDU). --start forces it.\n\n\
Output: an indented tree per PDU stack, or with --format json one JSON object per line per stack: \
{\"index\", \"offset\", \"layers\": [{\"layer\", \"pdu\", ...fields}]}.\n\n\
Exit codes: 0 every PDU decoded; 1 some input did not decode (the error names the layer, the byte \
offset and what was expected); 2 usage or I/O error.\n\n\
Examples:\n  rtse decode --hex '03 00 00 09 02 f0 80 15 00'\n  rtse decode capture.pcapng --format json\n  \
xxd -p pdu.ber | rtse decode - --start rtse";

const TIMELINE_HELP: &str = "Per-association Turn timeline: who held the RTSE Turn after every PDU, \
when it was lost, and which association recovered which.\n\n\
INPUT is a pcap/pcapng capture (or '-' for stdin). Each TCP connection carrying session PDUs is one \
association. Its PDUs go through the Turn tracker together with the transport events (T-OPEN at the SYN, \
T-FIN/T-RST when the connection drops, T-EOF when the capture ends first, T-GAP where the capture misses \
octets). An association whose RTORQ (or X.410 PConnect) carries 'recover' is linked to the association \
it recovers, across TCP connections and ports. INPUT may also be hex text or raw bytes of one TPKT stream \
(one association; say who sent each TPKT with --from).\n\n\
Output: per association a header (id, endpoints, mode, initiator and responder, the association it \
recovers), then one line per Turn-relevant PDU stack: frame, time, sender, PDUs, the Turn holder after it \
(initiator, responder, in-transit, none, unknown), anomalies marked. Runs of identical rows (the DT \
segments of a transfer) are folded. Associations are printed as soon as nothing later can change them \
(their connection closed and, if it was lost, a recovery was seen or --settle seconds of capture time \
passed), so memory stays bounded on large captures.\n\n\
--format json writes one document: {\"associations\": [{\"id\", \"endpoints\", \"mode\", \"initiator\", \
\"responder\", \"recovers\", \"events\": [{\"frame\", \"time\", \"from\", \"pdus\", \"turn\"}], \
\"anomalies\": [{\"kind\", \"frame\", \"detail\"}]}]} (see docs/timeline.md).\n\n\
--svg FILE also draws each association as a sequence diagram of the two MTAs: the Turn holder shaded \
along the time axis, drops marked, recoveries linked, anomalies in red.\n\n\
Anomaly kinds: turn-lost (after a recovery nobody acts as holder), two-holders, data-without-turn, \
please-unanswered, please-from-holder, transfer-lost, transfer-duplicated, and procedure checks \
(see docs/timeline.md).\n\n\
Exit codes: 0 the input decoded (anomalies are findings, not errors); 1 the input is not a readable \
capture or TPKT stream (what was read before the damage is still reported); 2 usage or I/O error; \
3 with --fail-on-anomaly, some association has an anomaly.\n\n\
Examples:\n  rtse timeline mtas.pcapng\n  rtse timeline mtas.pcapng --format json | jq '.associations[].anomalies'\n  \
rtse timeline mtas.pcapng --svg turn.svg --fail-on-anomaly\n  rtse timeline corpus/examples/ex4_turn_please_give_normal.hex --from rir";

/// When to colour the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorArg {
    /// When stdout is a terminal and NO_COLOR is not set.
    Auto,
    Always,
    Never,
}

#[derive(Debug, Args)]
pub struct TimelineArgs {
    /// Capture (pcap/pcapng), or hex/raw TPKT stream; '-' for stdin.
    #[arg(value_name = "INPUT", required_unless_present = "hex", conflicts_with = "hex")]
    pub input: Option<String>,
    /// A TPKT stream as hex on the command line.
    #[arg(long, value_name = "HEX")]
    pub hex: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Also draw the timelines as an SVG sequence diagram into FILE.
    #[arg(long, value_name = "FILE")]
    pub svg: Option<std::path::PathBuf>,
    /// Colour anomalies and holders.
    #[arg(long, value_enum, default_value_t = ColorArg::Auto)]
    pub color: ColorArg,
    /// Exit with 3 when any association has an anomaly.
    #[arg(long)]
    pub fail_on_anomaly: bool,
    /// TPKT stream input: who sent each TPKT, e.g. 'iirri' (i initiator, r responder; the last repeats).
    /// Default: CR/CN initiator, CC/AC/RF responder, others alternate (a guess).
    #[arg(long, value_name = "SENDERS")]
    pub from: Option<String>,
    /// Seconds of capture time a lost association waits for its recovery before it is printed.
    #[arg(long, value_name = "SECONDS", default_value_t = 300.0)]
    pub settle: f64,
    /// Seconds after which a please to an idle holder counts as unanswered (0: only at the end).
    #[arg(long, value_name = "SECONDS", default_value_t = 30.0)]
    pub please_timeout: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Indented tree for people.
    Text,
    /// JSON (decode: one object per PDU stack per line; timeline: one document).
    Json,
}

/// Where decoding starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Start {
    /// Recognise it from the bytes.
    Auto,
    /// A stream of TPKTs (RFC 1006).
    Tpkt,
    /// One TSDU: concatenated session SPDUs.
    Session,
    /// A presentation PPDU (the user data of a CN, AC, RF, AB or P-DATA).
    Presentation,
    /// An ACSE APDU.
    Acse,
    /// An RTSE APDU.
    Rtse,
}

/// Mode for PDUs whose mode the bytes alone do not tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    /// Learn it from the connect (CN), else guess from the bytes.
    Auto,
    /// X.228 normal mode (presentation + ACSE).
    Normal,
    /// X.410-1984 mode (RTS PDUs directly in session user data).
    X410,
}

#[derive(Debug, Args)]
pub struct DecodeArgs {
    /// File to decode ('-' for stdin): hex text, raw bytes, or pcap/pcapng.
    #[arg(value_name = "INPUT", required_unless_present = "hex", conflicts_with = "hex")]
    pub input: Option<String>,
    /// Bytes to decode, as hex.
    #[arg(long, value_name = "HEX")]
    pub hex: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Layer the bytes start at.
    #[arg(long, value_enum, default_value_t = Start::Auto)]
    pub start: Start,
    /// RTSE mode, where the bytes alone do not tell.
    #[arg(long, value_enum, default_value_t = ModeArg::Auto)]
    pub mode: ModeArg,
}

/// Parse arguments and run; returns the process exit code.
pub fn main_with(args: impl IntoIterator<Item = std::ffi::OsString>, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { exit::USAGE } else { exit::OK };
            let _ = if e.use_stderr() { write!(err, "{}", e.render()) } else { write!(out, "{}", e.render()) };
            return code;
        }
    };
    match cli.command {
        Command::Decode(a) => crate::decode::run(&a, out, err),
        Command::Timeline(a) => crate::timeline::run(&a, out, err),
        Command::Sim(a) => crate::sim::command(&a, out, err),
        Command::Run(a) => crate::suite::cmd::run(&a, out, err),
        Command::Cases(c) => crate::suite::cmd::cases(&c, out, err),
        Command::Serve(a) => crate::suite::cmd::serve(&a, out, err),
        Command::Proxy(a) => crate::proxy::run(&a, out, err),
        Command::Bench(BenchCommand::Proxy(a)) => {
            let o = crate::proxy::bench::Options {
                mb: a.mb,
                pings: a.pings,
                rounds: a.rounds,
                conns: a.conns,
                rtse: a.rtse,
            };
            match crate::proxy::bench::run(&o, out) {
                Ok(()) => exit::OK,
                Err(e) => {
                    let _ = writeln!(err, "rtse bench proxy: {e}");
                    exit::USAGE
                }
            }
        }
        Command::Bench(BenchCommand::Suite) => match crate::suite::cmd::bench(out) {
            Ok(()) => exit::OK,
            Err(e) => {
                let _ = writeln!(err, "rtse bench suite: {e}");
                exit::USAGE
            }
        },
        Command::Bench(BenchCommand::Timeline(a)) => {
            let o = crate::bench::Options {
                sizes: a.sizes,
                dir: a.dir,
                tshark_max_mb: a.tshark_max_mb,
                keep: a.keep,
                corpus: a.corpus,
            };
            match crate::bench::timeline(&o, out) {
                Ok(()) => exit::OK,
                Err(e) => {
                    let _ = writeln!(err, "rtse bench timeline: {e}");
                    exit::USAGE
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
