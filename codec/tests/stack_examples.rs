//! Whole-stack decoding of the worked examples (spec/examples.md): every
//! layer is found, the values the digest states come out, errors carry
//! absolute offsets, and no truncation or corruption makes it panic.

use rtse_codec::presentation::Mode;
use rtse_codec::stack::{self, AssociationDecoder, Context, Decoded, Sender, Stack};
use rtse_codec::{hex, Layer};
use serde_json::Value;

fn example_tpkts(name: &str) -> Vec<Vec<u8>> {
    let path = format!("{}/../corpus/examples/{name}.hex", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| hex::decode(l).unwrap())
        .collect()
}

/// The `layer pdu` sequence of a stack, e.g. `tpkt TPKT, cotp DT, session PT, ...`.
fn layers(s: &Stack<'_>) -> Vec<String> {
    let v = serde_json::to_value(s).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|l| format!("{} {}", l["layer"].as_str().unwrap(), l["pdu"].as_str().unwrap()))
        .collect()
}

fn decode_all(name: &str, senders: &[Sender]) -> Vec<(Vec<String>, Value)> {
    let mut dec = AssociationDecoder::new();
    let mut out = Vec::new();
    for (i, t) in example_tpkts(name).iter().enumerate() {
        dec.push(senders[i % senders.len()], t, |d: Decoded<'_>| {
            let s = d.result.unwrap_or_else(|e| panic!("{name} #{i}: {e}"));
            out.push((layers(&s), serde_json::to_value(&s).unwrap()));
        });
    }
    out
}

use Sender::{Initiator as I, Responder as R};

#[test]
fn ex2_connect_decodes_every_layer_to_the_p1_bind() {
    let got = decode_all("ex2_connect_normal", &[I, R]);
    assert_eq!(
        got[0].0,
        ["tpkt TPKT", "cotp DT", "session CN", "presentation CP", "acse AARQ", "rtse RTORQ", "p1 MTABindArgument"]
    );
    assert_eq!(
        got[1].0,
        ["tpkt TPKT", "cotp DT", "session AC", "presentation CPA", "acse AARE", "rtse RTOAC", "p1 MTABindResult"]
    );
    let rtorq = &got[0].1[5];
    assert_eq!(rtorq["checkpoint_size"], 1);
    assert_eq!(rtorq["window_size"], 3);
    assert_eq!(rtorq["dialogue_mode"], "twa");
    let cn = &got[0].1[2];
    assert_eq!(cn["item"]["token_setting"]["data"], "initiator", "{cn}");
}

#[test]
fn ex3_transfer_reassembles_rttr_segments_into_the_labelled_message() {
    let got = decode_all("ex3_transfer_normal", &[I, I, I, R, I, I, R]);
    let kinds: Vec<String> = got.iter().map(|(l, _)| l[2..].join(" / ")).collect();
    assert_eq!(
        kinds,
        [
            "session GT / session AS",
            "session GT / session DT / presentation USER-DATA / rtse RTTR",
            "session GT / session MIP",
            "session GT / session MIA",
            "session GT / session DT / presentation USER-DATA / rtse RTTR",
            "session GT / session AE / p1 Message",
            "session GT / session AEA",
        ]
    );
    let msg = got[5].1.as_array().unwrap().last().unwrap().clone();
    assert_eq!(msg["id"], "/C=GB/A= /P=ACME/;MSG-0001");
    assert_eq!(msg["octets"], 184);
}

#[test]
fn ex4_turn_please_carries_rttp_and_gtc_gta_are_bare() {
    let got = decode_all("ex4_turn_please_give_normal", &[R, I, R]);
    assert_eq!(got[0].0[2..], ["session PT", "presentation USER-DATA", "rtse RTTP"]);
    assert_eq!(got[0].1[4]["priority"], 0);
    assert_eq!(got[1].0[2..], ["session GTC"]);
    assert_eq!(got[2].0[2..], ["session GTA"]);
}

#[test]
fn ex5_recovery_quotes_the_lost_connection() {
    let got = decode_all("ex5_recovery_normal", &[I, R, I]);
    let rtorq = &got[0].1[5];
    assert_eq!(rtorq["pdu"], "RTORQ");
    let s = rtorq.to_string();
    assert!(s.contains("recover"), "{s}");
    assert_eq!(got[2].0[2..], ["session GT", "session AR"]);
}

#[test]
fn ex6_x410_mode_has_no_presentation_or_acse() {
    let got = decode_all("ex6_x410_mode", &[I, R, R, I, R]);
    assert_eq!(got[0].0, ["tpkt TPKT", "cotp DT", "session CN", "x410 PConnect", "p1 MTABindArgument"]);
    assert_eq!(got[1].0, ["tpkt TPKT", "cotp DT", "session AC", "x410 PAccept", "p1 MTABindResult"]);
    assert_eq!(got[2].0[2..], ["session PT", "x410 Priority"]);
    assert_eq!(got[2].1[3]["priority"], 0);
}

#[test]
fn ex7_abort_carries_rtab_user_error() {
    let got = decode_all("ex7_abort_normal", &[I, R]);
    assert_eq!(got[0].0[2..], ["session AB", "presentation ARU", "acse ABRT", "rtse RTAB"]);
    assert_eq!(got[0].1[5]["abort_reason"], "userError");
    assert_eq!(got[1].0[2..], ["session AA"]);
}

#[test]
fn x410_mode_learned_from_cn_decodes_a_later_pt() {
    let t = example_tpkts("ex6_x410_mode");
    let mut ctx = Context::default();
    stack::decode_tpkt(&mut ctx, I, &t[0]).unwrap();
    assert_eq!(ctx.mode, Some(Mode::X410));
    let (s, rest) = stack::decode_tpkt(&mut ctx, R, &t[2]).unwrap();
    assert!(rest.is_empty());
    assert_eq!(layers(&s)[3], "x410 Priority");
}

#[test]
fn errors_in_upper_layers_have_absolute_offsets() {
    // ex4 PT with the RTTP INTEGER's length byte corrupted (02 01 00 -> 02 05 00).
    let mut pt = example_tpkts("ex4_turn_please_give_normal")[0].clone();
    let n = pt.len();
    pt[n - 2] = 0x05;
    let mut ctx = Context::default();
    let e = stack::decode_tpkt(&mut ctx, R, &pt).unwrap_err();
    // The presentation layer sees the PDV value overrun first.
    assert!(matches!(e.layer, Layer::Presentation | Layer::Rtse), "{e}");
    assert!(e.offset >= 14 && e.offset <= n, "{e}");
    // A session error inside the TPKT is shifted by the 7-byte TPKT/DT header.
    let bad = hex::decode("0300000a02f080021010").unwrap();
    let e = stack::decode_tpkt(&mut Context::default(), R, &bad).unwrap_err();
    assert_eq!(e.layer, Layer::Session);
    assert!(e.offset >= 7, "{e}");
}

#[test]
fn a_tsdu_split_over_dts_and_tpkts_split_over_pushes_reassemble() {
    // ex4's PT TSDU split into three DTs, fed one byte at a time.
    let pt = &example_tpkts("ex4_turn_please_give_normal")[0];
    let tsdu = &pt[7..];
    let mut wire = Vec::new();
    for (i, part) in tsdu.chunks(7).enumerate() {
        let last = (i + 1) * 7 >= tsdu.len();
        let mut payload = rtse_codec::cotp::dt_header(last).to_vec();
        payload.extend_from_slice(part);
        rtse_codec::tpkt::emit(&rtse_codec::tpkt::Tpkt::new(&payload), &mut wire);
    }
    let mut dec = AssociationDecoder::new();
    let mut seen = Vec::new();
    for b in &wire {
        dec.push(R, std::slice::from_ref(b), |d| seen.push(d.result.map(|s| layers(&s)).unwrap()));
    }
    assert_eq!(seen.len(), 3);
    assert_eq!(seen[0], ["tpkt TPKT", "cotp DT"]);
    assert_eq!(seen[2][2..], ["session PT", "presentation USER-DATA", "rtse RTTP"]);
}

#[test]
fn resynchronises_after_garbage_and_reports_the_framing_error() {
    let t = example_tpkts("ex4_turn_please_give_normal");
    let mut wire = vec![0x17, 0x03, 0x01, 0xff, 0xee];
    wire.extend_from_slice(&t[1]);
    wire.extend_from_slice(&t[2]);
    let mut dec = AssociationDecoder::new();
    let mut ok = Vec::new();
    let mut errs = Vec::new();
    dec.push(I, &wire, |d| match d.result {
        Ok(s) => ok.push((d.stream_offset, layers(&s).last().cloned().unwrap())),
        Err(e) => errs.push((d.stream_offset, e)),
    });
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].1.layer, Layer::Tpkt);
    assert_eq!(ok, [(5, "session GTC".to_string()), (14, "session GTA".to_string())]);
}

#[test]
fn truncation_and_corruption_never_panic_and_errors_stay_inside_the_input() {
    for name in [
        "ex1_cotp_cr_cc",
        "ex2_connect_normal",
        "ex3_transfer_normal",
        "ex4_turn_please_give_normal",
        "ex5_recovery_normal",
        "ex6_x410_mode",
        "ex7_abort_normal",
    ] {
        for t in example_tpkts(name) {
            let check = |b: &[u8]| {
                let mut ctx = Context::default();
                if let Err(e) = stack::decode_tpkt(&mut ctx, I, b) {
                    assert!(e.offset <= b.len(), "{name}: {e} beyond {} octets", b.len());
                }
            };
            for n in 0..t.len() {
                check(&t[..n]);
            }
            let mut b = t.clone();
            for i in 0..b.len() {
                let orig = b[i];
                for v in [0x00, 0x01, 0x7f, 0x80, 0xff, orig ^ 0x20] {
                    b[i] = v;
                    check(&b);
                }
                b[i] = orig;
            }
        }
    }
}

#[test]
fn every_spdu_of_a_tsdu_keeps_its_upper_layers() {
    use rtse_codec::rtse::RtseApdu;
    // PT (RT-TURN-PLEASE 0) + MIP (User-data) + DT (RTTR ab cd): three SPDUs
    // with upper layers, which needs extended concatenation. The first
    // SPDU's layers are kept inline, the others in the spill list.
    let pt = "0211100101c10c610a3008020103a003020100";
    let mip = "31112a0131c10c610a3008020103a003020100";
    let dt = "0100610b3009020103a004 0402abcd";
    let b = hex::decode(&format!("{pt}{mip}{dt}")).unwrap();
    let mut ctx = Context::with_mode(Mode::Normal);
    ctx.session[0].extended_concatenation = true;
    let s = stack::decode_tsdu(&mut ctx, Sender::Initiator, &b).unwrap();
    let ss = s.session.as_ref().unwrap();
    assert_eq!(ss.tsdu.len(), 3);
    assert_eq!(ss.upper(0).unwrap().rtse, Some(RtseApdu::Rttp(0)));
    let mip_up = ss.upper(1).unwrap();
    assert!(mip_up.presentation.is_some() && mip_up.rtse.is_none());
    assert!(matches!(&ss.upper(2).unwrap().rtse, Some(RtseApdu::Rttr(d)) if d.as_bytes() == [0xab, 0xcd]));
    assert!(ss.upper(3).is_none());
    let kinds: Vec<_> = ss.iter().map(|(s, u)| (s.name(), u.presentation.is_some())).collect();
    assert_eq!(kinds, [("PT", true), ("MIP", true), ("DT", true)]);
    // The same TSDU decoded again compares equal; a GT+DT one does not.
    let again = stack::decode_tsdu(&mut ctx, Sender::Initiator, &b).unwrap();
    assert_eq!(s, again);
    let other = hex::decode(&format!("0100{dt}")).unwrap();
    assert_ne!(s, stack::decode_tsdu(&mut ctx, Sender::Initiator, &other).unwrap());
}

#[test]
fn a_gt_before_data_leaves_the_gt_without_upper_layers() {
    let b = hex::decode("0100 0100610b3009020103a0040402abcd").unwrap();
    let mut ctx = Context::with_mode(Mode::Normal);
    let s = stack::decode_tsdu(&mut ctx, Sender::Initiator, &b).unwrap();
    let ss = s.session.as_ref().unwrap();
    assert_eq!(ss.upper(0), Some(&stack::Upper::default()));
    assert!(ss.upper(1).unwrap().rtse.is_some());
}

#[test]
fn push_lent_lends_what_push_hands_over() {
    // Every worked example, whole and in 7-octet pieces, with garbage
    // before it, cut short and with an octet corrupted: the TPKTs
    // `push_lent` lends are those `push` hands over, in the same order.
    let dir = format!("{}/../corpus/examples", env!("CARGO_MANIFEST_DIR"));
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().into_string().ok()?.strip_suffix(".hex").map(str::to_owned))
        .collect();
    names.sort();
    assert!(names.len() >= 6, "{names:?}");
    let mut compared = 0;
    for name in &names {
        let tpkts = example_tpkts(name);
        let stream: Vec<u8> = tpkts.concat();
        let mut variants = vec![stream.clone(), [&[0x03, 0x00, 0x00][..], &stream].concat()];
        variants.push(stream[..stream.len() * 2 / 3].to_vec());
        let mut bad = stream.clone();
        bad[stream.len() / 2] ^= 0x5a;
        variants.push(bad);
        for bytes in &variants {
            for piece in [bytes.len().max(1), 7] {
                let (mut a, mut b) = (AssociationDecoder::new(), AssociationDecoder::new());
                let (mut handed, mut lent) = (Vec::new(), Vec::new());
                for (i, chunk) in bytes.chunks(piece).enumerate() {
                    let from = if i % 3 == 2 { R } else { I };
                    a.push(from, chunk, |d| handed.push(format!("{d:?}")));
                    b.push_lent(from, chunk, |d| lent.push(format!("{d:?}")));
                }
                assert_eq!(handed, lent, "{name}");
                compared += handed.len();
            }
        }
    }
    assert!(compared > 50, "{compared}");
}
