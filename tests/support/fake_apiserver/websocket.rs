//! Fake API server, WebSocket streams shared by port-forward and exec: an upgrade request → the subprotocol the
//! server picks, the 101 answer, the upgraded stream, and the channel framing (binary `[channel] + bytes` or the
//! base64 text variant); must not decide what a subresource answers, only how its bytes travel.

use bytes::Bytes;
use hyper::upgrade::OnUpgrade;
use hyper::{HeaderMap, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

use super::server::Body;
use super::util::{base64_decode, base64_encode};

/// An upgraded connection.
pub type Ws = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

/// How channel data travels in WebSocket messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Binary messages `[channel] + bytes` (`v4.channel.k8s.io`, `v5.channel.k8s.io`, or no subprotocol).
    Binary,
    /// Text messages `'0'+channel` + base64 (`v4.base64.channel.k8s.io`, `base64.channel.k8s.io`).
    Base64,
}

impl Framing {
    /// One message carrying `data` on `channel`.
    pub fn frame(self, channel: u8, data: &[u8]) -> Message {
        match self {
            Framing::Base64 => {
                let mut text = String::from(char::from(b'0'.saturating_add(channel)));
                text.push_str(&base64_encode(data, true));
                Message::text(text)
            }
            Framing::Binary => {
                let mut bin = Vec::with_capacity(data.len() + 1);
                bin.push(channel);
                bin.extend_from_slice(data);
                Message::binary(bin)
            }
        }
    }

    /// Splits a client message into channel and payload; `None` for anything that carries no channel byte.
    /// `allow_empty` keeps messages that are only a channel byte.
    pub fn unframe(self, msg: Message, allow_empty: bool) -> Option<(u8, Vec<u8>)> {
        let min = if allow_empty { 1 } else { 2 };
        match (self, msg) {
            (Framing::Binary, Message::Binary(b)) if b.len() >= min => {
                Some((b[0], b[1..].to_vec()))
            }
            (Framing::Base64, Message::Text(t)) if t.len() >= min => {
                let ch = t.as_bytes()[0].checked_sub(b'0')?;
                Some((ch, base64_decode(&t.as_str()[1..])?))
            }
            _ => None,
        }
    }
}

/// A plain-text answer, as the kubelet gives its errors.
pub fn text_response(code: u16, text: &str) -> Response<Body> {
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("Content-Type", "text/plain; charset=utf-8")
        .body(Body::Full(Some(Bytes::from(text.to_string()))))
        .unwrap_or_else(|_| Response::new(Body::Full(None)))
}

/// The handshake refusal when no offered subprotocol is spoken (08-portforward-subprotocols.json).
pub fn no_protocol_response() -> Response<Body> {
    Response::builder()
        .status(403)
        .header("Connection", "close")
        .body(Body::Full(None))
        .unwrap_or_else(|_| Response::new(Body::Full(None)))
}

/// The subprotocols the client offered, in its order (one header with commas, or several headers).
pub fn offered(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all("sec-websocket-protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

/// The first offered subprotocol found in `spoken` (the client's order wins); `Ok(None)` when none was offered
/// (answered with an empty header), `Err(())` when none of the offered ones is spoken.
pub fn negotiate(headers: &HeaderMap, spoken: &[&'static str]) -> Result<Option<&'static str>, ()> {
    let offered = offered(headers);
    if offered.is_empty() {
        return Ok(None);
    }
    offered
        .iter()
        .find_map(|p| spoken.iter().copied().find(|s| s == p))
        .map(Some)
        .ok_or(())
}

/// Whether the request asks for a WebSocket upgrade (`Upgrade: websocket`, `Connection: upgrade`).
pub fn is_websocket(headers: &HeaderMap) -> bool {
    let has = |name: &str, token: &str| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    };
    has("upgrade", "websocket") && has("connection", "upgrade")
}

/// The client's `Sec-WebSocket-Key` when the request is a complete WebSocket upgrade hyper can hand over.
pub fn upgrade_key(headers: &HeaderMap, upgrade: Option<&OnUpgrade>) -> Option<String> {
    let key = headers
        .get("sec-websocket-key")
        .and_then(|v| v.to_str().ok())?;
    (upgrade.is_some() && is_websocket(headers)).then(|| key.to_string())
}

/// `101 Switching Protocols` with the accept key and the chosen subprotocol (empty when none was offered).
pub fn switching_protocols(key: &str, protocol: Option<&str>) -> Response<Body> {
    Response::builder()
        .status(101)
        .header("Upgrade", "websocket")
        .header("Connection", "Upgrade")
        .header("Sec-WebSocket-Accept", derive_accept_key(key.as_bytes()))
        .header("Sec-WebSocket-Protocol", protocol.unwrap_or_default())
        .body(Body::Full(None))
        .unwrap_or_else(|_| Response::new(Body::Full(None)))
}

/// The server side of the connection once hyper has sent the 101; `None` when the client went away.
pub async fn accept(upgrade: OnUpgrade) -> Option<Ws> {
    let upgraded = upgrade.await.ok()?;
    Some(
        WebSocketStream::from_raw_socket(
            TokioIo::new(upgraded),
            Role::Server,
            Some(WebSocketConfig::default()),
        )
        .await,
    )
}
