//! TLS against redis-server's own TLS port, with certificates made for the run.

use redis_client::prelude::*;
use redis_client::{ConnectionInfo, Error, Redis, TlsOptions};
use redis_tests::ServerConfig;

fn tls_info(port: u16, tls: TlsOptions) -> ConnectionInfo {
    ConnectionInfo::tcp("127.0.0.1", port).with_tls(tls)
}

#[test]
fn connects_and_verifies_the_server() {
    let server = ServerConfig::default().tls(false).start();
    let r = Redis::from_info(tls_info(
        server.tls_port(),
        TlsOptions::default().with_ca_file(&server.certs().ca),
    ));
    assert!(r.set("over-tls", "yes").unwrap());
    assert_eq!(r.get("over-tls").unwrap().as_deref(), Some(&b"yes"[..]));
    // The same data is visible on the plain port: it really is the same server.
    assert_eq!(server.raw(&["GET", "over-tls"]), "yes");
}

#[test]
fn rediss_url_with_ca_file() {
    let server = ServerConfig::default().tls(false).start();
    let url = format!(
        "rediss://127.0.0.1:{}/0?ca_file={}",
        server.tls_port(),
        server.certs().ca.display()
    );
    let r = Redis::open(&url).unwrap();
    assert_eq!(r.incr("n").unwrap(), 1);
}

#[test]
fn wrong_ca_is_refused() {
    let server = ServerConfig::default().tls(false).start();
    let r = Redis::from_info(tls_info(
        server.tls_port(),
        TlsOptions::default().with_ca_file(&server.certs().other_ca),
    ));
    let err = r.get("k").unwrap_err();
    assert!(
        matches!(&err, Error::Tls(m) if m.contains("certificate")),
        "{err:?}"
    );
}

#[test]
fn wrong_server_name_is_refused() {
    let server = ServerConfig::default().tls(false).start();
    let opts = TlsOptions::default()
        .with_ca_file(&server.certs().ca)
        .with_server_name("not-this-host.example");
    let err = Redis::from_info(tls_info(server.tls_port(), opts))
        .get("k")
        .unwrap_err();
    assert!(
        matches!(&err, Error::Tls(m) if m.contains("certificate")),
        "{err:?}"
    );
}

#[test]
fn client_certificate_required_and_supplied() {
    let server = ServerConfig::default().tls(true).start();
    let certs = server.certs();
    let without = Redis::from_info(tls_info(
        server.tls_port(),
        TlsOptions::default().with_ca_file(&certs.ca),
    ));
    let err = without.get("k").unwrap_err();
    // TLS 1.3 reports a refused client certificate after the handshake, on first read.
    assert!(
        matches!(err, Error::Tls(_) | Error::ConnectionLost(_)),
        "{err:?}"
    );
    let with = Redis::from_info(tls_info(
        server.tls_port(),
        TlsOptions::default()
            .with_ca_file(&certs.ca)
            .with_client_cert(&certs.client_cert, &certs.client_key),
    ));
    assert!(with.set("mtls", "ok").unwrap());
}

#[test]
fn missing_ca_file_is_a_clear_error() {
    let server = ServerConfig::default().tls(false).start();
    let r = Redis::from_info(tls_info(
        server.tls_port(),
        TlsOptions::default().with_ca_file("/nonexistent/ca.pem"),
    ));
    let err = r.get("k").unwrap_err();
    assert!(
        matches!(&err, Error::Tls(m) if m.contains("/nonexistent/ca.pem")),
        "{err:?}"
    );
}

#[test]
fn a_tls_connection_killed_while_idle_is_replaced_before_use() {
    let server = ServerConfig::default().tls(false).start();
    let r = Redis::from_info(tls_info(
        server.tls_port(),
        TlsOptions::default().with_ca_file(&server.certs().ca),
    ))
    .with_retry_policy(redis_client::RetryPolicy::none());
    let id = r.client_id().unwrap();
    assert_eq!(r.incr("n").unwrap(), 1);
    assert_eq!(server.raw(&["CLIENT", "KILL", "ID", &id.to_string()]), ":1");
    // Without retries, only the checkout look can save this write: it finds the TLS
    // connection closed (close_notify or FIN under the TLS layer) and opens a new one.
    assert_eq!(r.incr("n").unwrap(), 2);
    assert_ne!(r.client_id().unwrap(), id);
    assert_eq!(r.pool().stats().discarded, 1);
}

#[test]
fn a_tls_session_ticket_does_not_make_an_idle_connection_look_stale() {
    let server = ServerConfig::default().tls(false).start();
    let r = Redis::from_info(tls_info(
        server.tls_port(),
        TlsOptions::default().with_ca_file(&server.certs().ca),
    ));
    // TLS 1.3 servers send session tickets after the handshake: records that carry no
    // data. Connections that received them are still reused.
    for i in 0..20 {
        r.set("k", i).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert_eq!(r.pool().stats().created, 1);
    assert_eq!(r.pool().stats().discarded, 0);
}
