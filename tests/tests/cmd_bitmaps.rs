//! Bitmap commands against a real server, over RESP2 and RESP3.

mod common;

use bytes::Bytes;
use common::for_each_protocol;
use redis_client::prelude::*;
use redis_client::redis_commands::{
    BitOffset, BitOp, BitUnit, BitfieldOps, BitfieldOverflow, BitfieldType,
};
use redis_tests::TestServer;

#[test]
fn single_bits() {
    let server = TestServer::start();
    for_each_protocol(&server, |r| {
        assert_eq!(r.setbit("bm", 7, true).unwrap(), 0);
        assert_eq!(r.setbit("bm", 7, true).unwrap(), 1);
        assert_eq!(r.getbit("bm", 7).unwrap(), 1);
        assert_eq!(r.getbit("bm", 6).unwrap(), 0);
        assert_eq!(r.getbit("bm", 1000).unwrap(), 0);
        assert_eq!(r.get("bm").unwrap(), Some(Bytes::from_static(b"\x01")));
        assert_eq!(r.setbit("bm", 7, false).unwrap(), 1);
    });
}

#[test]
fn counting_and_positions() {
    let server = TestServer::start();
    for_each_protocol(&server, |r| {
        // "foobar" is 0x66 0x6f 0x6f 0x62 0x61 0x72: 26 bits set.
        r.set("s", "foobar").unwrap();
        assert_eq!(r.bitcount("s").unwrap(), 26);
        assert_eq!(r.bitcount_range("s", 1, 1, BitUnit::Byte).unwrap(), 6);
        assert_eq!(r.bitcount_range("s", 5, 30, BitUnit::Bit).unwrap(), 17);
        assert_eq!(r.bitcount("missing").unwrap(), 0);

        r.set("p", Bytes::from_static(b"\xff\xf0\x00")).unwrap();
        assert_eq!(r.bitpos("p", false).unwrap(), 12);
        assert_eq!(r.bitpos("p", true).unwrap(), 0);
        assert_eq!(r.bitpos_range("p", true, 1, -1, BitUnit::Byte).unwrap(), 8);
        assert_eq!(r.bitpos_range("p", true, 2, 7, BitUnit::Bit).unwrap(), 2);
        assert_eq!(r.bitpos_range("p", true, 2, -1, BitUnit::Byte).unwrap(), -1);
    });
}

#[test]
fn bitop_combines_sources() {
    let server = TestServer::start();
    for_each_protocol(&server, |r| {
        r.set("a", Bytes::from_static(b"\x0f")).unwrap();
        r.set("b", Bytes::from_static(b"\x3c")).unwrap();
        assert_eq!(r.bitop(BitOp::And, "and", ["a", "b"]).unwrap(), 1);
        assert_eq!(r.get("and").unwrap(), Some(Bytes::from_static(b"\x0c")));
        r.bitop(BitOp::Or, "or", ["a", "b"]).unwrap();
        assert_eq!(r.get("or").unwrap(), Some(Bytes::from_static(b"\x3f")));
        r.bitop(BitOp::Xor, "xor", ["a", "b"]).unwrap();
        assert_eq!(r.get("xor").unwrap(), Some(Bytes::from_static(b"\x33")));
        r.bitop(BitOp::Not, "not", "a").unwrap();
        assert_eq!(r.get("not").unwrap(), Some(Bytes::from_static(b"\xf0")));
    });
    let cmd = redis_client::redis_commands::cmd::bitmaps::bitop(BitOp::Or, "d", ["s1", "s2"]).cmd;
    assert_eq!(
        cmd.keys().collect::<Vec<_>>(),
        vec![&b"d"[..], b"s1", b"s2"]
    );
}

#[test]
fn bitfield_typed_operations() {
    let server = TestServer::start();
    for_each_protocol(&server, |r| {
        let u8t = BitfieldType::Unsigned(8);
        let ops = BitfieldOps::new()
            .set(u8t, BitOffset::Bit(0), 200)
            .incrby(u8t, BitOffset::Bit(0), 100)
            .overflow(BitfieldOverflow::Sat)
            .incrby(u8t, BitOffset::Field(1), 300)
            .overflow(BitfieldOverflow::Fail)
            .incrby(u8t, BitOffset::Field(1), 1)
            .get(BitfieldType::Signed(4), BitOffset::Bit(8));
        // 200+100 wraps to 44; 0+300 saturates at 255; FAIL leaves it and answers nil;
        // the top four bits of 255 as i4 are -1.
        assert_eq!(
            r.bitfield("bf", ops).unwrap(),
            vec![Some(0), Some(44), Some(255), None, Some(-1)]
        );
        assert_eq!(
            r.bitfield_ro(
                "bf",
                &[(u8t, BitOffset::Field(0)), (u8t, BitOffset::Field(1))]
            )
            .unwrap(),
            vec![44, 255]
        );
    });
}
