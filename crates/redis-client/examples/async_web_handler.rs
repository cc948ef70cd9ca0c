//! A web service's handler sharing one client across requests, the way an axum or actix
//! handler gets it from the application state: a plain tokio HTTP loop stands in for the
//! framework, so the example needs nothing else.
//!
//! Each request to `/hit` counts a visit with INCR and answers the new count. The program
//! then sends itself 200 concurrent requests and prints what the server counted: all the
//! handlers' commands went over the one client's multiplexed connection.
//!
//! Run it with `REDIS_URL=redis://localhost:6379/0 cargo run --features tokio --example
//! async_web_handler`.

use redis_client::aio::Redis;
use redis_client::prelude::*;
use redis_client::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What a framework would hold as application state: the client, cloned per request.
#[derive(Clone)]
struct AppState {
    redis: Redis,
}

/// The handler: `async fn hit(State(state): State<AppState>) -> String` in axum.
async fn hit(state: &AppState) -> Result<String, Error> {
    let visits = state.redis.incr("visits").await?;
    Ok(format!("visit number {visits}\n"))
}

/// Serves one HTTP/1.0-style request on `stream`.
async fn serve(mut stream: TcpStream, state: AppState) -> std::io::Result<()> {
    let mut buf = [0u8; 1024];
    let n = stream.read(&mut buf).await?;
    let request = String::from_utf8_lossy(&buf[..n]);
    let (status, body) = if request.starts_with("GET /hit ") {
        match hit(&state).await {
            Ok(body) => ("200 OK", body),
            Err(e) => ("500 Internal Server Error", format!("{e}\n")),
        }
    } else {
        ("404 Not Found", "not found\n".to_owned())
    };
    let response = format!(
        "HTTP/1.0 {status}\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await
}

/// One request from a client's side.
async fn get(addr: std::net::SocketAddr) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.write_all(b"GET /hit HTTP/1.0\r\n\r\n").await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    Ok(response)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://localhost:6379/0".into());
    let state = AppState {
        redis: Redis::open(&url)?,
    };
    state.redis.del("visits").await?;

    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server_state = state.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            // One task per connection, every one with a clone of the same client.
            let state = server_state.clone();
            tokio::spawn(async move {
                if let Err(e) = serve(stream, state).await {
                    eprintln!("request failed: {e}");
                }
            });
        }
    });

    let requests: Vec<_> = (0..200).map(|_| tokio::spawn(get(addr))).collect();
    let mut ok = 0;
    for r in requests {
        if r.await??.starts_with("HTTP/1.0 200") {
            ok += 1;
        }
    }
    let visits = state.redis.reply_as::<i64>().get("visits").await?;
    println!("served {ok} requests; visits counted: {visits}");
    Ok(())
}
