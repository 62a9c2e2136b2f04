//! Every truncation and every single-octet replacement of every example
//! part: an error within the input or a valid PDU (which then round trips),
//! never a panic. Plus random and deeply nested input.

mod rtse_support;

use proptest::prelude::*;
use rtse_codec::p1;
use rtse_codec::rtse;
use rtse_codec::x410::{self, Slot};
use rtse_support::{example, h, hammer, tlv_after};

fn rtse_ok(b: &[u8]) -> Result<(), rtse_codec::Error> {
    let (a, rest) = rtse::parse(b)?;
    let mut out = Vec::new();
    rtse::emit(&a, &mut out);
    assert_eq!(out.len(), rtse::encoded_len(&a));
    let (back, r2) = rtse::parse(&out).expect("re-parse of emitted APDU");
    assert!(r2.is_empty());
    assert_eq!(back, a);
    assert!(rest.len() <= b.len());
    serde_json::to_string(&a).unwrap();
    // Whatever is inside open/user data must not panic P1 either.
    if let Some(d) = a.user_data() {
        for w in [true, false] {
            let _ = p1::parse_bind_argument(d, w).map_err(|e| assert!(e.offset <= d.len()));
            let _ = p1::parse_bind_result(d, w).map_err(|e| assert!(e.offset <= d.len()));
            let _ = p1::parse_bind_error(d, w).map_err(|e| assert!(e.offset <= d.len()));
        }
    }
    Ok(())
}

fn x410_ok(slot: Slot, b: &[u8]) -> Result<(), rtse_codec::Error> {
    let (p, _) = x410::parse(slot, b)?;
    let mut out = Vec::new();
    x410::emit(&p, &mut out);
    assert_eq!(out.len(), x410::encoded_len(&p));
    assert_eq!(x410::parse(slot, &out).expect("re-parse").0, p);
    Ok(())
}

#[test]
fn rtse_examples_survive_truncation_and_corruption() {
    let parts = [
        tlv_after(&example("ex2", "CN_tsdu"), "2829020103a024", 7),
        tlv_after(&example("ex2", "AC_tsdu"), "2826020103a021", 7),
        tlv_after(&example("ex4", "PT"), "3008020103a003", 7),
        tlv_after(&example("ex5", "CN"), "282f020103a02a", 7),
        tlv_after(&example("ex5", "AC"), "282c020103a027", 7),
        tlv_after(&example("ex7", "AB"), "280a020103a005", 7),
        h("b60c80010981020780a203020105"),
        h("b207a105b203020100"),
        // RTTR shortened (corrupting all 94 octets of the real one adds nothing but time).
        h("24800402aabb0401cc0000"),
    ];
    for b in &parts {
        let (ok, err) = hammer(b, rtse_ok);
        assert!(ok > 0 && err > 0, "{ok} {err}");
    }
    // The real RTTR: truncations only.
    let rttr = tlv_after(&example("ex3", "DT1"), "3063020103a05e", 7);
    for n in 0..rttr.len() {
        let _ = rtse_ok(&rttr[..n]).map_err(|e| assert!(e.offset <= n));
    }
}

#[test]
fn x410_examples_survive_truncation_and_corruption() {
    let parts = [
        (Slot::Connect, tlv_after(&example("ex6", "CN"), "c12c", 2)),
        (Slot::Accept, tlv_after(&example("ex6", "AC"), "c126", 2)),
        (Slot::TokenPlease, h("020100")),
        (Slot::Refuse, h("3103800102")),
        (Slot::Abort, h("3107800101810207 80")),
    ];
    for (slot, b) in &parts {
        // Every slot's parser on every part.
        for s in [Slot::Connect, Slot::Accept, Slot::Refuse, Slot::TokenPlease, Slot::Abort] {
            hammer(b, |x| x410_ok(s, x));
        }
        let _ = slot;
    }
}

#[test]
fn p1_examples_survive_truncation_and_corruption() {
    let bind = h("b013a11180054d54412d41a1081606736563726574");
    for w in [true, false] {
        hammer(&bind, |b| p1::parse_bind_argument(b, w).map(|_| ()));
        hammer(&bind[2..], |b| p1::parse_bind_result(b, w).map(|_| ()));
    }
    let ext = example("ex3", "EXTERNAL");
    let mts = &ext[9..];
    let (ok, err) = hammer(mts, |b| {
        let (t, _) = p1::parse_mts_apdu(b)?;
        serde_json::to_string(&t).unwrap();
        let _ = t.mts_identifier.to_string();
        Ok(())
    });
    assert!(ok > 0 && err > 0);
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    for lead in [0xb0u8, 0xa3, 0x31, 0xa0, 0x24] {
        let mut b = Vec::new();
        for _ in 0..10_000 {
            b.extend_from_slice(&[lead, 0x80]);
        }
        assert!(rtse::parse(&b).is_err());
        assert!(x410::parse_connect(&b).is_err());
        assert!(p1::parse_mts_apdu(&b).is_err());
        assert!(p1::parse_bind_argument(&b, true).is_err());
    }
    // Nested constructed RTTR segments, definite lengths.
    let mut b = h("0401aa");
    for _ in 0..200 {
        let mut o = vec![0x24];
        rtse_codec::ber::write_len(&mut o, b.len());
        o.extend(b);
        b = o;
    }
    assert!(rtse::parse(&b).is_err());
}

proptest! {
    #[test]
    fn random_input_never_panics(b in proptest::collection::vec(any::<u8>(), 0..64)) {
        for lead in [None, Some(0xb0u8), Some(0xb1), Some(0xb6), Some(0x31), Some(0xa0), Some(0x24)] {
            let mut x = lead.map(|l| vec![l, 0x80]).unwrap_or_default();
            x.extend_from_slice(&b);
            let _ = rtse_ok(&x).map_err(|e| assert!(e.offset <= x.len()));
            for s in [Slot::Connect, Slot::Accept, Slot::Refuse, Slot::TokenPlease, Slot::Abort] {
                let _ = x410_ok(s, &x).map_err(|e| assert!(e.offset <= x.len()));
            }
            let _ = p1::parse_mts_apdu(&x).map_err(|e| assert!(e.offset <= x.len()));
            let _ = p1::parse_bind_argument(&x, false).map_err(|e| assert!(e.offset <= x.len()));
        }
    }
}
