//! MCP over stdin/stdout. stdout carries protocol only; logs go to stderr.
//!
//! rmcp's line transport ignores a line that is not JSON (and one nested deeper than serde_json's
//! 128 levels, which it cannot tell apart), so a client that sent one waits forever. A thin layer
//! reads stdin first: such a line gets the JSON-RPC answer (-32700 parse error, or -32600 with
//! the request's id for one nested too deeply), everything else goes to rmcp unchanged.

use std::sync::Arc;

use rmcp::model::{ErrorData, NumberOrString};
use rmcp::service::{RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::transport::Transport;
use rmcp::transport::async_rw::{AsyncRwTransport, DEFAULT_MAX_LINE_LENGTH};
use rmcp::{RoleServer, ServiceExt};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{AppState, BitrouterServer, ServeError};

/// Serves until the client closes stdin or `shutdown` fires.
pub async fn serve(state: Arc<AppState>, shutdown: CancellationToken) -> Result<(), ServeError> {
    // Pipes (how clients start stdio servers) are read on the reactor, not the blocking pool: a
    // blocking stdin read cannot be cancelled and would keep SIGTERM from ending the process.
    let (read, write) = rmcp::transport::stdio_pipes();
    let transport = Checked::new(read, write);
    // `serve` waits for the client's `initialize`; a SIGTERM before it must still end us.
    let service = tokio::select! {
        s = BitrouterServer::new(state).serve(transport) => {
            s.map_err(|e| ServeError::Stdio(e.to_string()))?
        }
        _ = shutdown.cancelled() => return Ok(()),
    };
    let cancel = service.cancellation_token();
    tokio::select! {
        r = service.waiting() => { r.map_err(|e| ServeError::Stdio(e.to_string()))?; }
        _ = shutdown.cancelled() => cancel.cancel(),
    }
    Ok(())
}

/// rmcp's line transport behind a pre-parse of every incoming line.
pub struct Checked<W: AsyncWrite + Send + Unpin + 'static> {
    inner: AsyncRwTransport<RoleServer, tokio::io::DuplexStream, W>,
    /// Answers to lines rmcp never sees, written through `inner` so lines never interleave.
    replies: mpsc::UnboundedReceiver<TxJsonRpcMessage<RoleServer>>,
    feeder: tokio::task::JoinHandle<()>,
}

impl<W: AsyncWrite + Send + Unpin + 'static> Checked<W> {
    pub fn new<R: AsyncRead + Send + Unpin + 'static>(read: R, write: W) -> Self {
        // Room for one maximal line, so the feeder never waits on rmcp mid-line for long.
        let (to_rmcp, from_feeder) = tokio::io::duplex(64 * 1024);
        let (tx, replies) = mpsc::unbounded_channel();
        let feeder = tokio::spawn(feed(read, to_rmcp, tx));
        Self {
            inner: AsyncRwTransport::new(from_feeder, write),
            replies,
            feeder,
        }
    }
}

impl<W: AsyncWrite + Send + Unpin + 'static> Transport<RoleServer> for Checked<W> {
    type Error = std::io::Error;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleServer>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        self.inner.send(item)
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleServer>> {
        loop {
            tokio::select! {
                biased;
                Some(reply) = self.replies.recv() => {
                    if let Err(e) = self.inner.send(reply).await {
                        tracing::debug!(error = %e, "cannot answer a malformed line");
                    }
                }
                // rmcp's receive keeps a partial line across cancellation.
                message = self.inner.receive() => return message,
            }
        }
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        self.feeder.abort();
        self.inner.close().await
    }
}

/// What to do with one line of input.
#[derive(Debug, PartialEq)]
enum Verdict {
    /// Hand it to rmcp as it is.
    Pass,
    /// Answer it here.
    Answer(ErrorData, Option<NumberOrString>),
}

/// Copies stdin to rmcp line by line, answering the lines rmcp would drop silently.
async fn feed<R: AsyncRead + Unpin>(
    read: R,
    mut to_rmcp: tokio::io::DuplexStream,
    replies: mpsc::UnboundedSender<TxJsonRpcMessage<RoleServer>>,
) {
    let mut read = BufReader::new(read);
    let mut line = Vec::new();
    loop {
        line.clear();
        let limit = DEFAULT_MAX_LINE_LENGTH as u64 + 1;
        match (&mut read).take(limit).read_until(b'\n', &mut line).await {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) => {
                tracing::error!(error = %e, "reading stdin");
                return;
            }
        }
        if line.len() > DEFAULT_MAX_LINE_LENGTH && line.last() != Some(&b'\n') {
            // Too long: drop the rest of it without buffering it, and say so.
            if skip_line(&mut read).await.is_err() {
                return;
            }
            let _ = replies.send(TxJsonRpcMessage::<RoleServer>::error(
                ErrorData::invalid_request(
                    format!(
                        "message longer than {} MiB: ignored",
                        DEFAULT_MAX_LINE_LENGTH / (1024 * 1024)
                    ),
                    None,
                ),
                None,
            ));
            continue;
        }
        match check(&line) {
            Verdict::Pass => {
                if !line.ends_with(b"\n") {
                    line.push(b'\n');
                }
                if to_rmcp.write_all(&line).await.is_err() {
                    return;
                }
            }
            Verdict::Answer(error, id) => {
                tracing::debug!(error = %error.message, "answering a malformed line");
                let _ = replies.send(TxJsonRpcMessage::<RoleServer>::error(error, id));
            }
        }
    }
}

/// Consumes input up to and including the next newline (or EOF), a buffer at a time.
async fn skip_line<R: AsyncRead + Unpin>(read: &mut BufReader<R>) -> std::io::Result<()> {
    loop {
        let buf = read.fill_buf().await?;
        if buf.is_empty() {
            return Ok(());
        }
        match buf.iter().position(|b| *b == b'\n') {
            Some(i) => {
                read.consume(i + 1);
                return Ok(());
            }
            None => {
                let n = buf.len();
                read.consume(n);
            }
        }
    }
}

/// The pre-parse: JSON goes through; anything else is answered.
fn check(line: &[u8]) -> Verdict {
    let body = line.strip_suffix(b"\n").unwrap_or(line);
    let body = body.strip_suffix(b"\r").unwrap_or(body);
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    if body.iter().all(u8::is_ascii_whitespace) {
        return Verdict::Pass;
    }
    let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(body) else {
        // Well-formed JSON (serde_json skips values without a depth limit); but rmcp parses
        // into values, which stop at 128 levels.
        return match serde_json::from_slice::<serde_json::Value>(body) {
            Ok(_) => Verdict::Pass,
            Err(_) => Verdict::Answer(
                ErrorData::invalid_request(
                    "request nested more than 128 levels deep: not processed",
                    None,
                ),
                envelope_id(body),
            ),
        };
    };
    Verdict::Answer(
        ErrorData::parse_error(
            format!("not JSON ({e}): send one JSON-RPC message per line (newline-delimited JSON)"),
            None,
        ),
        None,
    )
}

/// The top-level `id` of a message too deep to parse as a whole.
fn envelope_id(body: &[u8]) -> Option<NumberOrString> {
    #[derive(serde::Deserialize)]
    struct Envelope {
        #[serde(default)]
        id: Option<NumberOrString>,
    }
    // Fields other than `id` are skipped without a depth limit.
    serde_json::from_slice::<Envelope>(body)
        .ok()
        .and_then(|e| e.id)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn code(v: &Verdict) -> Option<i32> {
        match v {
            Verdict::Pass => None,
            Verdict::Answer(e, _) => Some(e.code.0),
        }
    }

    #[test]
    fn json_passes_and_garbage_is_answered() {
        assert_eq!(
            check(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}\n"),
            Verdict::Pass
        );
        assert_eq!(
            check(b"[]\n"),
            Verdict::Pass,
            "rmcp answers shapes it knows"
        );
        assert_eq!(check(b"\r\n"), Verdict::Pass);
        assert_eq!(code(&check(b"{\n")), Some(-32700));
        assert_eq!(code(&check(b"hello\n")), Some(-32700));
        assert_eq!(code(&check(b"\xff\xfe{\"a\": \xc3\x28}\n")), Some(-32700));
        let unbalanced = "[".repeat(100_000);
        assert_eq!(code(&check(unbalanced.as_bytes())), Some(-32700));
    }

    #[test]
    fn a_deeply_nested_request_is_answered_with_its_id() {
        let deep = format!(
            "{{\"jsonrpc\":\"2.0\",\"method\":\"tools/call\",\"params\":{{\"name\":\"x\",\"arguments\":{{\"a\":{}{}}}}},\"id\":7}}",
            "[".repeat(10_000),
            "]".repeat(10_000)
        );
        match check(deep.as_bytes()) {
            Verdict::Answer(e, id) => {
                assert_eq!(e.code.0, -32600);
                assert_eq!(id, Some(NumberOrString::Number(7)));
            }
            Verdict::Pass => panic!("a 10,000-deep request must be answered here"),
        }
    }
}
