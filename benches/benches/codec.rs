//! Decode and encode throughput of resp-proto.

#![allow(missing_docs)] // criterion_group! generates undocumented items.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use resp_proto::{Decode, Decoder};

fn decode(c: &mut Criterion) {
    let corpus = redis_benches::bulk_array(1000, 100);
    let mut g = c.benchmark_group("resp-proto/decode");
    g.throughput(Throughput::Bytes(corpus.len() as u64));
    g.bench_function("array_1000x100", |b| {
        b.iter(|| {
            let mut buf = corpus.clone();
            Decoder::new()
                .decode(&mut buf)
                .expect("valid")
                .expect("complete")
        })
    });
    g.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);
