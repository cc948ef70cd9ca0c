//! resp-proto's tokio-util codec framing a real server's replies: what a proxy built on
//! `resp-proto` alone would do.

use bytes::BytesMut;
use redis_client::futures_core::Stream;
use redis_tests::TestServer;
use resp_proto::codec::Codec;
use resp_proto::Value;
use std::future::poll_fn;
use std::pin::pin;
use tokio::io::AsyncWriteExt;
use tokio_util::codec::{Encoder, FramedRead};

#[tokio::test]
async fn frames_a_servers_pipelined_replies() {
    let server = TestServer::start();
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", server.port()))
        .await
        .unwrap();
    let (rd, mut wr) = stream.into_split();
    let mut codec = Codec::new();
    let mut out = BytesMut::new();
    let command = |args: &[&str]| {
        Value::Array(
            args.iter()
                .map(|a| Value::BulkString(bytes::Bytes::copy_from_slice(a.as_bytes())))
                .collect(),
        )
    };
    for args in [
        &["HELLO", "3"][..],
        &["SET", "k", "v"],
        &["GET", "k"],
        &["INCR", "k"],
    ] {
        codec.encode(command(args), &mut out).unwrap();
    }
    wr.write_all(&out).await.unwrap();
    let mut frames = pin!(FramedRead::new(rd, Codec::new()));
    let mut next = async || poll_fn(|cx| frames.as_mut().poll_next(cx)).await.unwrap();
    assert!(
        matches!(next().await.unwrap(), Value::Map(_)),
        "HELLO 3 answers a map"
    );
    assert_eq!(next().await.unwrap(), Value::SimpleString("OK".into()));
    assert_eq!(next().await.unwrap(), Value::BulkString("v".into()));
    assert!(
        matches!(next().await.unwrap(), Value::Error(e) if e.code() == resp_proto::ErrorCode::ERR)
    );
}
