//! Capture reading throughput: `cargo bench -p rtse-codec --bench capture`.
//! Prints MB/s for the in-memory and the streaming reader on the 1.5 MB
//! S7comm benchmark capture.

use rtse_codec::capture::{read_capture, read_capture_stream, StreamEvent};
use std::time::Instant;

const FILE: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/../corpus/captures/s7comm_varservice_libnodavedemo_bench.pcap");

fn main() {
    let data = std::fs::read(FILE).expect("bench capture");
    // A plain throughput figure first (divan reports time per iteration).
    for (name, stream) in [("read_capture", false), ("read_capture_stream", true)] {
        let runs = 50;
        let start = Instant::now();
        let mut octets = 0u64;
        for _ in 0..runs {
            let on = |ev: StreamEvent<'_>| {
                if let StreamEvent::Data { bytes, .. } = ev {
                    octets += bytes.len() as u64;
                }
            };
            let s = if stream { read_capture_stream(&data[..], on) } else { read_capture(&data, on) };
            s.expect("bench capture reads");
        }
        let secs = start.elapsed().as_secs_f64();
        let mbs = (data.len() * runs) as f64 / secs / 1e6;
        println!("{name}: {mbs:.0} MB/s of capture ({:.0} MB/s of TCP payload)", octets as f64 / secs / 1e6);
    }
    divan::main();
}

#[divan::bench(args = [false, true])]
fn s7comm_bench_pcap(bencher: divan::Bencher, stream: bool) {
    let data = std::fs::read(FILE).expect("bench capture");
    bencher.counter(divan::counter::BytesCount::new(data.len())).bench(|| {
        let mut n = 0u64;
        let on = |ev: StreamEvent<'_>| {
            if let StreamEvent::Data { bytes, .. } = ev {
                n += bytes.len() as u64;
            }
        };
        let r = if stream { read_capture_stream(&data[..], on) } else { read_capture(&data, on) };
        divan::black_box(r.map(|s| s.bytes).unwrap_or(0))
    });
}
