//! Decode and encode throughput of resp-proto, side by side with the `redis` crate's parser
//! on the same bytes, fed the same way (socket-sized reads).

#![allow(missing_docs)] // criterion_group! generates undocumented items.

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use redis_benches::{corpora, decode_like_a_socket, READ_SIZE};
use std::hint::black_box;
use std::io::Read;

/// A reader that hands out at most [`READ_SIZE`] bytes per call, like a socket.
struct Socket<'a>(&'a [u8]);

impl Read for Socket<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let n = out.len().min(READ_SIZE).min(self.0.len());
        out[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

fn redis_crate_decode(input: &[u8], replies: u64) -> u64 {
    let mut parser = redis::Parser::new();
    let mut socket = Socket(input);
    for _ in 0..replies {
        black_box(parser.parse_value(&mut socket).expect("valid"));
    }
    replies
}

fn decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("resp-proto/decode");
    for corpus in corpora() {
        let bytes = &corpus.bytes[..];
        g.throughput(Throughput::Bytes(bytes.len() as u64));
        g.bench_with_input(
            BenchmarkId::new("resp-proto", corpus.name),
            bytes,
            |b, bytes| b.iter(|| decode_like_a_socket(bytes).expect("valid")),
        );
        g.bench_with_input(
            BenchmarkId::new("redis-crate", corpus.name),
            bytes,
            |b, bytes| b.iter(|| redis_crate_decode(bytes, corpus.replies)),
        );
    }
    g.finish();
}

fn encode(c: &mut Criterion) {
    let key = [b'k'; 16];
    let value = [b'v'; 16];
    let set: Vec<&[u8]> = vec![b"SET", &key, &value];
    let mset_keys: Vec<Vec<u8>> = (0..100).map(|i| format!("key:{i:012}").into()).collect();
    let mut mset: Vec<&[u8]> = vec![b"MSET"];
    for k in &mset_keys {
        mset.push(k);
        mset.push(&value);
    }
    let mut g = c.benchmark_group("resp-proto/encode");
    for (name, args) in [("set_16b", &set), ("mset_100", &mset)] {
        g.throughput(Throughput::Elements(1));
        g.bench_with_input(BenchmarkId::new("resp-proto", name), args, |b, args| {
            // A fresh buffer each time, as the redis crate packs into a fresh Vec.
            b.iter(|| {
                let mut out = BytesMut::new();
                resp_proto::encode_command(&mut out, args);
                black_box(out)
            })
        });
        g.bench_with_input(BenchmarkId::new("redis-crate", name), args, |b, args| {
            b.iter(|| {
                let mut cmd = redis::cmd(std::str::from_utf8(args[0]).expect("ascii name"));
                for a in &args[1..] {
                    cmd.arg(*a);
                }
                black_box(cmd.get_packed_command())
            })
        });
    }
    g.finish();
}

criterion_group!(benches, decode, encode);
criterion_main!(benches);
