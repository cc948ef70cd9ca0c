//! The async client's read of a cacheable command that missed: the blocking
//! [`tracked_read`](super::tracked_read) on an async pooled connection.

use super::Ticket;
use crate::{Error, Result};
use redis_commands::Cmd;
use redis_conn::aio::PooledConnection;
use redis_conn::ReplyTimeout;
use resp_proto::Value;

/// Sends `cmd` on a tracking connection and reads its reply, offering it to `ticket`.
/// Dropped part way, the ticket abandons the read and the pool closes the connection.
pub(crate) async fn tracked_read(
    conn: &mut PooledConnection,
    cmd: &Cmd,
    ticket: Ticket,
    timeout: ReplyTimeout,
) -> Result<Value> {
    let mut header = [0u8; 24];
    let header = cmd.header(&mut header);
    let prefix = ticket.prefix();
    let replies = if prefix.is_empty() { 1 } else { 2 };
    conn.send(&[prefix, header, cmd.body()], replies, timeout)
        .await?;
    if replies == 2 {
        if let Value::Error(e) = conn.read_reply(ReplyTimeout::Default).await? {
            return Err(Error::from(redis_conn::Error::from_server_error(e)).for_command(cmd));
        }
    }
    match conn.read_reply(ReplyTimeout::Default).await? {
        Value::Error(e) => {
            Err(Error::from(redis_conn::Error::from_server_error(e)).for_command(cmd))
        }
        v => {
            ticket.complete(cmd, &v);
            Ok(v)
        }
    }
}
