//! SPDY/3.1 port-forwarding, the protocol kubectl (client-go) speaks to a kubelet through the
//! API server: `POST .../pods/NAME/portforward` with `Upgrade: SPDY/3.1` and
//! `X-Stream-Protocol-Version: portforward.k8s.io` (101, then SPDY frames on the
//! connection), or the same SPDY byte stream tunnelled in WebSocket binary messages
//! (subprotocol `SPDY/3.1+portforward.k8s.io`, kubectl >= 1.31's default).
//!
//! Framing follows moby/spdystream's `spdy` package (the framer client-go and the kubelet
//! use): control frames SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS
//! and WINDOW_UPDATE, data frames with a FIN flag, and name/value header blocks compressed
//! with zlib and the SPDY/3 dictionary, one compression context per direction for the
//! whole connection. Our own header blocks are deflated with the dictionary and a sync
//! flush after each block, as spdystream's framer does.
//!
//! Port-forward semantics follow the kubelet's httpstream handler: per forwarded
//! connection the client opens an error stream and a data stream (headers `streamtype`,
//! `port`, `requestid`); each gets a SYN_REPLY as it arrives, and once both of a request
//! id are there the server connects to the pod's mapped address and copies bytes both
//! ways. A failed connect is reported as text on the error stream. Then both streams are
//! finished (FIN). The client may forward many connections over one session over time.
//!
//! Flow control: spdystream neither sends WINDOW_UPDATE nor honours windows, so windows
//! are ignored here too (honouring the 64 KiB default would stall every larger transfer).

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use futures::{SinkExt, StreamExt};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONNECTION, UPGRADE};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::error::ApiError;

/// The SPDY version this module speaks.
pub const VERSION: u16 = 3;

/// `X-Stream-Protocol-Version` of port-forwarding over SPDY.
pub const PORT_FORWARD_PROTOCOL: &str = "portforward.k8s.io";
/// The WebSocket subprotocol under which kubectl tunnels SPDY.
pub const TUNNEL_PROTOCOL: &str = "SPDY/3.1+portforward.k8s.io";

/// Control frame types.
pub mod kind {
    pub const SYN_STREAM: u16 = 1;
    pub const SYN_REPLY: u16 = 2;
    pub const RST_STREAM: u16 = 3;
    pub const SETTINGS: u16 = 4;
    pub const PING: u16 = 6;
    pub const GOAWAY: u16 = 7;
    pub const HEADERS: u16 = 8;
    pub const WINDOW_UPDATE: u16 = 9;
}

/// FIN: the sender will send nothing more on this stream (data frames, SYN_STREAM,
/// SYN_REPLY, HEADERS).
pub const FLAG_FIN: u8 = 0x01;
/// SYN_STREAM only: the receiver must not send on this stream.
pub const FLAG_UNIDIRECTIONAL: u8 = 0x02;

/// RST_STREAM status codes.
pub mod rst {
    pub const PROTOCOL_ERROR: u32 = 1;
    pub const INVALID_STREAM: u32 = 2;
    pub const REFUSED_STREAM: u32 = 3;
    pub const CANCEL: u32 = 5;
    pub const INTERNAL_ERROR: u32 = 6;
}

/// GOAWAY status codes.
pub mod goaway {
    pub const OK: u32 = 0;
    pub const PROTOCOL_ERROR: u32 = 1;
}

/// The largest payload one frame can carry (24-bit length).
pub const MAX_FRAME_LEN: usize = (1 << 24) - 1;
/// How much of a backend's output goes into one data frame.
const CHUNK: usize = 32 * 1024;
/// Cap on a decompressed header block (a few short headers in practice).
const MAX_HEADER_BLOCK: usize = 1 << 20;

/// The SPDY/3 header compression dictionary (draft-mbelshe-httpbis-spdy-00 2.6.10.1), byte
/// for byte as in spdystream; its adler32 (the zlib DICTID) is 0xe3c6a7c2.
#[rustfmt::skip]
pub const DICTIONARY: [u8; 1423] = [
    0x00, 0x00, 0x00, 0x07, 0x6f, 0x70, 0x74, 0x69, 0x6f, 0x6e, 0x73, 0x00, 0x00, 0x00, 0x04, 0x68,
    0x65, 0x61, 0x64, 0x00, 0x00, 0x00, 0x04, 0x70, 0x6f, 0x73, 0x74, 0x00, 0x00, 0x00, 0x03, 0x70,
    0x75, 0x74, 0x00, 0x00, 0x00, 0x06, 0x64, 0x65, 0x6c, 0x65, 0x74, 0x65, 0x00, 0x00, 0x00, 0x05,
    0x74, 0x72, 0x61, 0x63, 0x65, 0x00, 0x00, 0x00, 0x06, 0x61, 0x63, 0x63, 0x65, 0x70, 0x74, 0x00,
    0x00, 0x00, 0x0e, 0x61, 0x63, 0x63, 0x65, 0x70, 0x74, 0x2d, 0x63, 0x68, 0x61, 0x72, 0x73, 0x65,
    0x74, 0x00, 0x00, 0x00, 0x0f, 0x61, 0x63, 0x63, 0x65, 0x70, 0x74, 0x2d, 0x65, 0x6e, 0x63, 0x6f,
    0x64, 0x69, 0x6e, 0x67, 0x00, 0x00, 0x00, 0x0f, 0x61, 0x63, 0x63, 0x65, 0x70, 0x74, 0x2d, 0x6c,
    0x61, 0x6e, 0x67, 0x75, 0x61, 0x67, 0x65, 0x00, 0x00, 0x00, 0x0d, 0x61, 0x63, 0x63, 0x65, 0x70,
    0x74, 0x2d, 0x72, 0x61, 0x6e, 0x67, 0x65, 0x73, 0x00, 0x00, 0x00, 0x03, 0x61, 0x67, 0x65, 0x00,
    0x00, 0x00, 0x05, 0x61, 0x6c, 0x6c, 0x6f, 0x77, 0x00, 0x00, 0x00, 0x0d, 0x61, 0x75, 0x74, 0x68,
    0x6f, 0x72, 0x69, 0x7a, 0x61, 0x74, 0x69, 0x6f, 0x6e, 0x00, 0x00, 0x00, 0x0d, 0x63, 0x61, 0x63,
    0x68, 0x65, 0x2d, 0x63, 0x6f, 0x6e, 0x74, 0x72, 0x6f, 0x6c, 0x00, 0x00, 0x00, 0x0a, 0x63, 0x6f,
    0x6e, 0x6e, 0x65, 0x63, 0x74, 0x69, 0x6f, 0x6e, 0x00, 0x00, 0x00, 0x0c, 0x63, 0x6f, 0x6e, 0x74,
    0x65, 0x6e, 0x74, 0x2d, 0x62, 0x61, 0x73, 0x65, 0x00, 0x00, 0x00, 0x10, 0x63, 0x6f, 0x6e, 0x74,
    0x65, 0x6e, 0x74, 0x2d, 0x65, 0x6e, 0x63, 0x6f, 0x64, 0x69, 0x6e, 0x67, 0x00, 0x00, 0x00, 0x10,
    0x63, 0x6f, 0x6e, 0x74, 0x65, 0x6e, 0x74, 0x2d, 0x6c, 0x61, 0x6e, 0x67, 0x75, 0x61, 0x67, 0x65,
    0x00, 0x00, 0x00, 0x0e, 0x63, 0x6f, 0x6e, 0x74, 0x65, 0x6e, 0x74, 0x2d, 0x6c, 0x65, 0x6e, 0x67,
    0x74, 0x68, 0x00, 0x00, 0x00, 0x10, 0x63, 0x6f, 0x6e, 0x74, 0x65, 0x6e, 0x74, 0x2d, 0x6c, 0x6f,
    0x63, 0x61, 0x74, 0x69, 0x6f, 0x6e, 0x00, 0x00, 0x00, 0x0b, 0x63, 0x6f, 0x6e, 0x74, 0x65, 0x6e,
    0x74, 0x2d, 0x6d, 0x64, 0x35, 0x00, 0x00, 0x00, 0x0d, 0x63, 0x6f, 0x6e, 0x74, 0x65, 0x6e, 0x74,
    0x2d, 0x72, 0x61, 0x6e, 0x67, 0x65, 0x00, 0x00, 0x00, 0x0c, 0x63, 0x6f, 0x6e, 0x74, 0x65, 0x6e,
    0x74, 0x2d, 0x74, 0x79, 0x70, 0x65, 0x00, 0x00, 0x00, 0x04, 0x64, 0x61, 0x74, 0x65, 0x00, 0x00,
    0x00, 0x04, 0x65, 0x74, 0x61, 0x67, 0x00, 0x00, 0x00, 0x06, 0x65, 0x78, 0x70, 0x65, 0x63, 0x74,
    0x00, 0x00, 0x00, 0x07, 0x65, 0x78, 0x70, 0x69, 0x72, 0x65, 0x73, 0x00, 0x00, 0x00, 0x04, 0x66,
    0x72, 0x6f, 0x6d, 0x00, 0x00, 0x00, 0x04, 0x68, 0x6f, 0x73, 0x74, 0x00, 0x00, 0x00, 0x08, 0x69,
    0x66, 0x2d, 0x6d, 0x61, 0x74, 0x63, 0x68, 0x00, 0x00, 0x00, 0x11, 0x69, 0x66, 0x2d, 0x6d, 0x6f,
    0x64, 0x69, 0x66, 0x69, 0x65, 0x64, 0x2d, 0x73, 0x69, 0x6e, 0x63, 0x65, 0x00, 0x00, 0x00, 0x0d,
    0x69, 0x66, 0x2d, 0x6e, 0x6f, 0x6e, 0x65, 0x2d, 0x6d, 0x61, 0x74, 0x63, 0x68, 0x00, 0x00, 0x00,
    0x08, 0x69, 0x66, 0x2d, 0x72, 0x61, 0x6e, 0x67, 0x65, 0x00, 0x00, 0x00, 0x13, 0x69, 0x66, 0x2d,
    0x75, 0x6e, 0x6d, 0x6f, 0x64, 0x69, 0x66, 0x69, 0x65, 0x64, 0x2d, 0x73, 0x69, 0x6e, 0x63, 0x65,
    0x00, 0x00, 0x00, 0x0d, 0x6c, 0x61, 0x73, 0x74, 0x2d, 0x6d, 0x6f, 0x64, 0x69, 0x66, 0x69, 0x65,
    0x64, 0x00, 0x00, 0x00, 0x08, 0x6c, 0x6f, 0x63, 0x61, 0x74, 0x69, 0x6f, 0x6e, 0x00, 0x00, 0x00,
    0x0c, 0x6d, 0x61, 0x78, 0x2d, 0x66, 0x6f, 0x72, 0x77, 0x61, 0x72, 0x64, 0x73, 0x00, 0x00, 0x00,
    0x06, 0x70, 0x72, 0x61, 0x67, 0x6d, 0x61, 0x00, 0x00, 0x00, 0x12, 0x70, 0x72, 0x6f, 0x78, 0x79,
    0x2d, 0x61, 0x75, 0x74, 0x68, 0x65, 0x6e, 0x74, 0x69, 0x63, 0x61, 0x74, 0x65, 0x00, 0x00, 0x00,
    0x13, 0x70, 0x72, 0x6f, 0x78, 0x79, 0x2d, 0x61, 0x75, 0x74, 0x68, 0x6f, 0x72, 0x69, 0x7a, 0x61,
    0x74, 0x69, 0x6f, 0x6e, 0x00, 0x00, 0x00, 0x05, 0x72, 0x61, 0x6e, 0x67, 0x65, 0x00, 0x00, 0x00,
    0x07, 0x72, 0x65, 0x66, 0x65, 0x72, 0x65, 0x72, 0x00, 0x00, 0x00, 0x0b, 0x72, 0x65, 0x74, 0x72,
    0x79, 0x2d, 0x61, 0x66, 0x74, 0x65, 0x72, 0x00, 0x00, 0x00, 0x06, 0x73, 0x65, 0x72, 0x76, 0x65,
    0x72, 0x00, 0x00, 0x00, 0x02, 0x74, 0x65, 0x00, 0x00, 0x00, 0x07, 0x74, 0x72, 0x61, 0x69, 0x6c,
    0x65, 0x72, 0x00, 0x00, 0x00, 0x11, 0x74, 0x72, 0x61, 0x6e, 0x73, 0x66, 0x65, 0x72, 0x2d, 0x65,
    0x6e, 0x63, 0x6f, 0x64, 0x69, 0x6e, 0x67, 0x00, 0x00, 0x00, 0x07, 0x75, 0x70, 0x67, 0x72, 0x61,
    0x64, 0x65, 0x00, 0x00, 0x00, 0x0a, 0x75, 0x73, 0x65, 0x72, 0x2d, 0x61, 0x67, 0x65, 0x6e, 0x74,
    0x00, 0x00, 0x00, 0x04, 0x76, 0x61, 0x72, 0x79, 0x00, 0x00, 0x00, 0x03, 0x76, 0x69, 0x61, 0x00,
    0x00, 0x00, 0x07, 0x77, 0x61, 0x72, 0x6e, 0x69, 0x6e, 0x67, 0x00, 0x00, 0x00, 0x10, 0x77, 0x77,
    0x77, 0x2d, 0x61, 0x75, 0x74, 0x68, 0x65, 0x6e, 0x74, 0x69, 0x63, 0x61, 0x74, 0x65, 0x00, 0x00,
    0x00, 0x06, 0x6d, 0x65, 0x74, 0x68, 0x6f, 0x64, 0x00, 0x00, 0x00, 0x03, 0x67, 0x65, 0x74, 0x00,
    0x00, 0x00, 0x06, 0x73, 0x74, 0x61, 0x74, 0x75, 0x73, 0x00, 0x00, 0x00, 0x06, 0x32, 0x30, 0x30,
    0x20, 0x4f, 0x4b, 0x00, 0x00, 0x00, 0x07, 0x76, 0x65, 0x72, 0x73, 0x69, 0x6f, 0x6e, 0x00, 0x00,
    0x00, 0x08, 0x48, 0x54, 0x54, 0x50, 0x2f, 0x31, 0x2e, 0x31, 0x00, 0x00, 0x00, 0x03, 0x75, 0x72,
    0x6c, 0x00, 0x00, 0x00, 0x06, 0x70, 0x75, 0x62, 0x6c, 0x69, 0x63, 0x00, 0x00, 0x00, 0x0a, 0x73,
    0x65, 0x74, 0x2d, 0x63, 0x6f, 0x6f, 0x6b, 0x69, 0x65, 0x00, 0x00, 0x00, 0x0a, 0x6b, 0x65, 0x65,
    0x70, 0x2d, 0x61, 0x6c, 0x69, 0x76, 0x65, 0x00, 0x00, 0x00, 0x06, 0x6f, 0x72, 0x69, 0x67, 0x69,
    0x6e, 0x31, 0x30, 0x30, 0x31, 0x30, 0x31, 0x32, 0x30, 0x31, 0x32, 0x30, 0x32, 0x32, 0x30, 0x35,
    0x32, 0x30, 0x36, 0x33, 0x30, 0x30, 0x33, 0x30, 0x32, 0x33, 0x30, 0x33, 0x33, 0x30, 0x34, 0x33,
    0x30, 0x35, 0x33, 0x30, 0x36, 0x33, 0x30, 0x37, 0x34, 0x30, 0x32, 0x34, 0x30, 0x35, 0x34, 0x30,
    0x36, 0x34, 0x30, 0x37, 0x34, 0x30, 0x38, 0x34, 0x30, 0x39, 0x34, 0x31, 0x30, 0x34, 0x31, 0x31,
    0x34, 0x31, 0x32, 0x34, 0x31, 0x33, 0x34, 0x31, 0x34, 0x34, 0x31, 0x35, 0x34, 0x31, 0x36, 0x34,
    0x31, 0x37, 0x35, 0x30, 0x32, 0x35, 0x30, 0x34, 0x35, 0x30, 0x35, 0x32, 0x30, 0x33, 0x20, 0x4e,
    0x6f, 0x6e, 0x2d, 0x41, 0x75, 0x74, 0x68, 0x6f, 0x72, 0x69, 0x74, 0x61, 0x74, 0x69, 0x76, 0x65,
    0x20, 0x49, 0x6e, 0x66, 0x6f, 0x72, 0x6d, 0x61, 0x74, 0x69, 0x6f, 0x6e, 0x32, 0x30, 0x34, 0x20,
    0x4e, 0x6f, 0x20, 0x43, 0x6f, 0x6e, 0x74, 0x65, 0x6e, 0x74, 0x33, 0x30, 0x31, 0x20, 0x4d, 0x6f,
    0x76, 0x65, 0x64, 0x20, 0x50, 0x65, 0x72, 0x6d, 0x61, 0x6e, 0x65, 0x6e, 0x74, 0x6c, 0x79, 0x34,
    0x30, 0x30, 0x20, 0x42, 0x61, 0x64, 0x20, 0x52, 0x65, 0x71, 0x75, 0x65, 0x73, 0x74, 0x34, 0x30,
    0x31, 0x20, 0x55, 0x6e, 0x61, 0x75, 0x74, 0x68, 0x6f, 0x72, 0x69, 0x7a, 0x65, 0x64, 0x34, 0x30,
    0x33, 0x20, 0x46, 0x6f, 0x72, 0x62, 0x69, 0x64, 0x64, 0x65, 0x6e, 0x34, 0x30, 0x34, 0x20, 0x4e,
    0x6f, 0x74, 0x20, 0x46, 0x6f, 0x75, 0x6e, 0x64, 0x35, 0x30, 0x30, 0x20, 0x49, 0x6e, 0x74, 0x65,
    0x72, 0x6e, 0x61, 0x6c, 0x20, 0x53, 0x65, 0x72, 0x76, 0x65, 0x72, 0x20, 0x45, 0x72, 0x72, 0x6f,
    0x72, 0x35, 0x30, 0x31, 0x20, 0x4e, 0x6f, 0x74, 0x20, 0x49, 0x6d, 0x70, 0x6c, 0x65, 0x6d, 0x65,
    0x6e, 0x74, 0x65, 0x64, 0x35, 0x30, 0x33, 0x20, 0x53, 0x65, 0x72, 0x76, 0x69, 0x63, 0x65, 0x20,
    0x55, 0x6e, 0x61, 0x76, 0x61, 0x69, 0x6c, 0x61, 0x62, 0x6c, 0x65, 0x4a, 0x61, 0x6e, 0x20, 0x46,
    0x65, 0x62, 0x20, 0x4d, 0x61, 0x72, 0x20, 0x41, 0x70, 0x72, 0x20, 0x4d, 0x61, 0x79, 0x20, 0x4a,
    0x75, 0x6e, 0x20, 0x4a, 0x75, 0x6c, 0x20, 0x41, 0x75, 0x67, 0x20, 0x53, 0x65, 0x70, 0x74, 0x20,
    0x4f, 0x63, 0x74, 0x20, 0x4e, 0x6f, 0x76, 0x20, 0x44, 0x65, 0x63, 0x20, 0x30, 0x30, 0x3a, 0x30,
    0x30, 0x3a, 0x30, 0x30, 0x20, 0x4d, 0x6f, 0x6e, 0x2c, 0x20, 0x54, 0x75, 0x65, 0x2c, 0x20, 0x57,
    0x65, 0x64, 0x2c, 0x20, 0x54, 0x68, 0x75, 0x2c, 0x20, 0x46, 0x72, 0x69, 0x2c, 0x20, 0x53, 0x61,
    0x74, 0x2c, 0x20, 0x53, 0x75, 0x6e, 0x2c, 0x20, 0x47, 0x4d, 0x54, 0x63, 0x68, 0x75, 0x6e, 0x6b,
    0x65, 0x64, 0x2c, 0x74, 0x65, 0x78, 0x74, 0x2f, 0x68, 0x74, 0x6d, 0x6c, 0x2c, 0x69, 0x6d, 0x61,
    0x67, 0x65, 0x2f, 0x70, 0x6e, 0x67, 0x2c, 0x69, 0x6d, 0x61, 0x67, 0x65, 0x2f, 0x6a, 0x70, 0x67,
    0x2c, 0x69, 0x6d, 0x61, 0x67, 0x65, 0x2f, 0x67, 0x69, 0x66, 0x2c, 0x61, 0x70, 0x70, 0x6c, 0x69,
    0x63, 0x61, 0x74, 0x69, 0x6f, 0x6e, 0x2f, 0x78, 0x6d, 0x6c, 0x2c, 0x61, 0x70, 0x70, 0x6c, 0x69,
    0x63, 0x61, 0x74, 0x69, 0x6f, 0x6e, 0x2f, 0x78, 0x68, 0x74, 0x6d, 0x6c, 0x2b, 0x78, 0x6d, 0x6c,
    0x2c, 0x74, 0x65, 0x78, 0x74, 0x2f, 0x70, 0x6c, 0x61, 0x69, 0x6e, 0x2c, 0x74, 0x65, 0x78, 0x74,
    0x2f, 0x6a, 0x61, 0x76, 0x61, 0x73, 0x63, 0x72, 0x69, 0x70, 0x74, 0x2c, 0x70, 0x75, 0x62, 0x6c,
    0x69, 0x63, 0x70, 0x72, 0x69, 0x76, 0x61, 0x74, 0x65, 0x6d, 0x61, 0x78, 0x2d, 0x61, 0x67, 0x65,
    0x3d, 0x67, 0x7a, 0x69, 0x70, 0x2c, 0x64, 0x65, 0x66, 0x6c, 0x61, 0x74, 0x65, 0x2c, 0x73, 0x64,
    0x63, 0x68, 0x63, 0x68, 0x61, 0x72, 0x73, 0x65, 0x74, 0x3d, 0x75, 0x74, 0x66, 0x2d, 0x38, 0x63,
    0x68, 0x61, 0x72, 0x73, 0x65, 0x74, 0x3d, 0x69, 0x73, 0x6f, 0x2d, 0x38, 0x38, 0x35, 0x39, 0x2d,
    0x31, 0x2c, 0x75, 0x74, 0x66, 0x2d, 0x2c, 0x2a, 0x2c, 0x65, 0x6e, 0x71, 0x3d, 0x30, 0x2e,
];

/// The zlib DICTID (adler32) of [`DICTIONARY`].
pub const DICTIONARY_ID: u32 = 0xe3c6_a7c2;

// ---------------------------------------------------------------------------------------
// Header blocks
// ---------------------------------------------------------------------------------------

/// A name/value header block: lowercase names; a value holding several values joins them
/// with NUL, as on the wire.
pub type Headers = Vec<(String, String)>;

/// The first value of header `name` (names are compared case-insensitively).
pub fn header<'a>(h: &'a Headers, name: &str) -> Option<&'a str> {
    h.iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.split('\0').next().unwrap_or(""))
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// The uncompressed block: count, then length-prefixed name and value per header (32-bit
/// big-endian lengths in SPDY/3).
fn raw_block(h: &Headers) -> Vec<u8> {
    let mut out =
        Vec::with_capacity(4 + h.iter().map(|(n, v)| 8 + n.len() + v.len()).sum::<usize>());
    out.extend_from_slice(&(h.len() as u32).to_be_bytes());
    for (name, value) in h {
        let name = name.to_ascii_lowercase();
        out.extend_from_slice(&(name.len() as u32).to_be_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&(value.len() as u32).to_be_bytes());
        out.extend_from_slice(value.as_bytes());
    }
    out
}

fn parse_raw_block(raw: &[u8]) -> io::Result<Headers> {
    let mut at = 0usize;
    let mut take = |n: usize| -> io::Result<&[u8]> {
        let s = raw
            .get(at..at + n)
            .ok_or_else(|| invalid("truncated SPDY header block"))?;
        at += n;
        Ok(s)
    };
    let be32 = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
    let count = be32(take(4)?);
    let mut h = Vec::with_capacity(count.min(64));
    for _ in 0..count {
        let n = be32(take(4)?);
        let name = String::from_utf8_lossy(take(n)?).to_ascii_lowercase();
        let n = be32(take(4)?);
        let value = String::from_utf8_lossy(take(n)?).into_owned();
        h.push((name, value));
    }
    Ok(h)
}

/// Compresses this side's header blocks: one zlib stream for the connection, primed with
/// the dictionary, sync-flushed after each block (as spdystream's framer does).
pub struct HeaderEncoder {
    z: Compress,
}

impl Default for HeaderEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl HeaderEncoder {
    pub fn new() -> Self {
        // Best compression, as spdystream (zlib.BestCompression); the zlib header then
        // reads 78 f9 plus the DICTID.
        let mut z = Compress::new(Compression::best(), true);
        z.set_dictionary(&DICTIONARY)
            .expect("a fresh deflate stream accepts a dictionary");
        HeaderEncoder { z }
    }

    /// One compressed header block (the bytes that follow a frame's fixed fields).
    pub fn encode(&mut self, h: &Headers) -> io::Result<Vec<u8>> {
        let raw = raw_block(h);
        let mut out = Vec::with_capacity(raw.len() + 64);
        let mut pos = 0usize;
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve(raw.len() + 64);
            }
            let before = self.z.total_in();
            self.z
                .compress_vec(&raw[pos..], &mut out, FlushCompress::Sync)
                .map_err(|e| invalid(format!("deflate: {e}")))?;
            pos += (self.z.total_in() - before) as usize;
            // Done when all input is in and the flush did not run out of room.
            if pos >= raw.len() && out.len() < out.capacity() {
                return Ok(out);
            }
        }
    }
}

/// Decompresses the peer's header blocks (one zlib stream for the connection; the peer
/// primed it with the dictionary, which inflate asks for after the stream header).
pub struct HeaderDecoder {
    z: Decompress,
}

impl Default for HeaderDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl HeaderDecoder {
    pub fn new() -> Self {
        HeaderDecoder {
            z: Decompress::new(true),
        }
    }

    /// Inflate one compressed block and parse it. An error leaves the context unusable
    /// (the connection has to go).
    pub fn decode(&mut self, block: &[u8]) -> io::Result<Headers> {
        let mut out = Vec::with_capacity(block.len() * 4 + 64);
        let mut pos = 0usize;
        loop {
            if out.capacity() - out.len() < 256 {
                out.reserve(out.len().max(1024));
            }
            let (before_in, before_out) = (self.z.total_in(), self.z.total_out());
            let res = self
                .z
                .decompress_vec(&block[pos..], &mut out, FlushDecompress::Sync);
            let used = (self.z.total_in() - before_in) as usize;
            pos += used;
            let made = self.z.total_out() - before_out;
            match res {
                Ok(Status::StreamEnd) => {
                    return Err(invalid("the SPDY header stream ended (zlib end of stream)"))
                }
                Ok(_) => {}
                Err(e) => match e.needs_dictionary() {
                    Some(DICTIONARY_ID) => {
                        self.z
                            .set_dictionary(&DICTIONARY)
                            .map_err(|e| invalid(format!("inflate dictionary: {e}")))?;
                        continue;
                    }
                    Some(other) => {
                        return Err(invalid(format!(
                            "SPDY header block wants dictionary {other:#x}, not the SPDY/3 one"
                        )))
                    }
                    None => return Err(invalid(format!("inflate: {e}"))),
                },
            }
            if out.len() > MAX_HEADER_BLOCK {
                return Err(invalid("SPDY header block too large"));
            }
            if pos >= block.len() && out.len() < out.capacity() {
                break;
            }
            if used == 0 && made == 0 && pos < block.len() {
                return Err(invalid("inflate made no progress on a SPDY header block"));
            }
        }
        parse_raw_block(&out)
    }
}

// ---------------------------------------------------------------------------------------
// Frames
// ---------------------------------------------------------------------------------------

/// One SPDY/3 frame, unpacked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    SynStream {
        stream_id: u32,
        associated_to: u32,
        /// 3-bit priority, 0 highest.
        priority: u8,
        slot: u8,
        flags: u8,
        headers: Headers,
    },
    SynReply {
        stream_id: u32,
        flags: u8,
        headers: Headers,
    },
    RstStream {
        stream_id: u32,
        status: u32,
    },
    Settings {
        flags: u8,
        /// (flags, id, value)
        entries: Vec<(u8, u32, u32)>,
    },
    Ping {
        id: u32,
    },
    GoAway {
        last_good_stream_id: u32,
        status: u32,
    },
    Headers {
        stream_id: u32,
        flags: u8,
        headers: Headers,
    },
    WindowUpdate {
        stream_id: u32,
        delta: u32,
    },
    Data {
        stream_id: u32,
        flags: u8,
        data: Bytes,
    },
    /// A control frame of a type we do not know (skipped, as the spec asks).
    Unknown {
        kind: u16,
        flags: u8,
        payload: Bytes,
    },
}

const STREAM_MASK: u32 = 0x7fff_ffff;

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn control(kind: u16, flags: u8, payload: &[u8]) -> io::Result<Vec<u8>> {
    if payload.len() > MAX_FRAME_LEN {
        return Err(invalid("SPDY frame too large"));
    }
    let mut out = Vec::with_capacity(8 + payload.len());
    out.extend_from_slice(&(0x8000 | VERSION).to_be_bytes());
    out.extend_from_slice(&kind.to_be_bytes());
    out.extend_from_slice(&((u32::from(flags) << 24) | payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    Ok(out)
}

impl Frame {
    /// The stream a frame belongs to (0 for connection-level frames).
    pub fn stream_id(&self) -> u32 {
        match self {
            Frame::SynStream { stream_id, .. }
            | Frame::SynReply { stream_id, .. }
            | Frame::RstStream { stream_id, .. }
            | Frame::Headers { stream_id, .. }
            | Frame::WindowUpdate { stream_id, .. }
            | Frame::Data { stream_id, .. } => *stream_id,
            _ => 0,
        }
    }

    /// Serialize, compressing any header block with `enc` (so frames must be encoded in
    /// the order they are sent).
    pub fn encode(&self, enc: &mut HeaderEncoder) -> io::Result<Vec<u8>> {
        match self {
            Frame::SynStream {
                stream_id,
                associated_to,
                priority,
                slot,
                flags,
                headers,
            } => {
                let mut p = Vec::new();
                p.extend_from_slice(&(stream_id & STREAM_MASK).to_be_bytes());
                p.extend_from_slice(&(associated_to & STREAM_MASK).to_be_bytes());
                p.push((priority & 0x07) << 5);
                p.push(*slot);
                p.extend_from_slice(&enc.encode(headers)?);
                control(kind::SYN_STREAM, *flags, &p)
            }
            Frame::SynReply {
                stream_id,
                flags,
                headers,
            }
            | Frame::Headers {
                stream_id,
                flags,
                headers,
            } => {
                let mut p = Vec::new();
                p.extend_from_slice(&(stream_id & STREAM_MASK).to_be_bytes());
                p.extend_from_slice(&enc.encode(headers)?);
                let k = if matches!(self, Frame::SynReply { .. }) {
                    kind::SYN_REPLY
                } else {
                    kind::HEADERS
                };
                control(k, *flags, &p)
            }
            Frame::RstStream { stream_id, status } => {
                let mut p = (stream_id & STREAM_MASK).to_be_bytes().to_vec();
                p.extend_from_slice(&status.to_be_bytes());
                control(kind::RST_STREAM, 0, &p)
            }
            Frame::Settings { flags, entries } => {
                let mut p = (entries.len() as u32).to_be_bytes().to_vec();
                for (f, id, value) in entries {
                    p.extend_from_slice(
                        &((u32::from(*f) << 24) | (id & 0x00ff_ffff)).to_be_bytes(),
                    );
                    p.extend_from_slice(&value.to_be_bytes());
                }
                control(kind::SETTINGS, *flags, &p)
            }
            Frame::Ping { id } => control(kind::PING, 0, &id.to_be_bytes()),
            Frame::GoAway {
                last_good_stream_id,
                status,
            } => {
                let mut p = (last_good_stream_id & STREAM_MASK).to_be_bytes().to_vec();
                p.extend_from_slice(&status.to_be_bytes());
                control(kind::GOAWAY, 0, &p)
            }
            Frame::WindowUpdate { stream_id, delta } => {
                let mut p = (stream_id & STREAM_MASK).to_be_bytes().to_vec();
                p.extend_from_slice(&(delta & STREAM_MASK).to_be_bytes());
                control(kind::WINDOW_UPDATE, 0, &p)
            }
            Frame::Data {
                stream_id,
                flags,
                data,
            } => {
                if data.len() > MAX_FRAME_LEN {
                    return Err(invalid("SPDY data frame too large"));
                }
                let mut out = Vec::with_capacity(8 + data.len());
                out.extend_from_slice(&(stream_id & STREAM_MASK).to_be_bytes());
                out.extend_from_slice(
                    &((u32::from(*flags) << 24) | data.len() as u32).to_be_bytes(),
                );
                out.extend_from_slice(data);
                Ok(out)
            }
            Frame::Unknown {
                kind,
                flags,
                payload,
            } => control(*kind, *flags, payload),
        }
    }

    /// Parse one frame from its 8-byte head and its payload, inflating any header block
    /// with `dec` (frames must be decoded in the order they arrived).
    pub fn decode(head: [u8; 8], payload: Bytes, dec: &mut HeaderDecoder) -> io::Result<Frame> {
        let first = be32(&head, 0);
        let flags = head[4];
        let need = |n: usize| {
            if payload.len() < n {
                Err(invalid(format!(
                    "SPDY control frame too short ({} bytes, needs {n})",
                    payload.len()
                )))
            } else {
                Ok(())
            }
        };
        if first & 0x8000_0000 == 0 {
            return Ok(Frame::Data {
                stream_id: first & STREAM_MASK,
                flags,
                data: payload,
            });
        }
        let version = ((first >> 16) & 0x7fff) as u16;
        if version != VERSION {
            return Err(invalid(format!("unsupported SPDY version {version}")));
        }
        let k = (first & 0xffff) as u16;
        let p = &payload[..];
        Ok(match k {
            kind::SYN_STREAM => {
                need(10)?;
                Frame::SynStream {
                    stream_id: be32(p, 0) & STREAM_MASK,
                    associated_to: be32(p, 4) & STREAM_MASK,
                    priority: p[8] >> 5,
                    slot: p[9],
                    flags,
                    headers: dec.decode(&p[10..])?,
                }
            }
            kind::SYN_REPLY | kind::HEADERS => {
                need(4)?;
                let stream_id = be32(p, 0) & STREAM_MASK;
                let headers = dec.decode(&p[4..])?;
                if k == kind::SYN_REPLY {
                    Frame::SynReply {
                        stream_id,
                        flags,
                        headers,
                    }
                } else {
                    Frame::Headers {
                        stream_id,
                        flags,
                        headers,
                    }
                }
            }
            kind::RST_STREAM => {
                need(8)?;
                Frame::RstStream {
                    stream_id: be32(p, 0) & STREAM_MASK,
                    status: be32(p, 4),
                }
            }
            kind::SETTINGS => {
                need(4)?;
                let n = be32(p, 0) as usize;
                need(4 + n.saturating_mul(8))?;
                let entries = (0..n)
                    .map(|i| {
                        let fid = be32(p, 4 + 8 * i);
                        ((fid >> 24) as u8, fid & 0x00ff_ffff, be32(p, 8 + 8 * i))
                    })
                    .collect();
                Frame::Settings { flags, entries }
            }
            kind::PING => {
                need(4)?;
                Frame::Ping { id: be32(p, 0) }
            }
            kind::GOAWAY => {
                need(4)?;
                Frame::GoAway {
                    last_good_stream_id: be32(p, 0) & STREAM_MASK,
                    // SPDY/2 had no status; be lenient.
                    status: if p.len() >= 8 { be32(p, 4) } else { goaway::OK },
                }
            }
            kind::WINDOW_UPDATE => {
                need(8)?;
                Frame::WindowUpdate {
                    stream_id: be32(p, 0) & STREAM_MASK,
                    delta: be32(p, 4) & STREAM_MASK,
                }
            }
            other => Frame::Unknown {
                kind: other,
                flags,
                payload,
            },
        })
    }
}

/// Read the next frame; `None` at a clean end of stream (between frames).
pub async fn read_frame<R: AsyncRead + Unpin>(
    r: &mut R,
    dec: &mut HeaderDecoder,
) -> io::Result<Option<Frame>> {
    let mut head = [0u8; 8];
    let n = r.read(&mut head).await?;
    if n == 0 {
        return Ok(None);
    }
    r.read_exact(&mut head[n..]).await?;
    let len = (be32(&head, 4) & 0x00ff_ffff) as usize;
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload).await?;
    Frame::decode(head, payload.into(), dec).map(Some)
}

// ---------------------------------------------------------------------------------------
// Port-forward sessions
// ---------------------------------------------------------------------------------------

/// What a port-forward session needs to know about its pod.
#[derive(Clone, Debug, Default)]
pub struct PodTarget {
    pub name: String,
    pub uid: String,
    /// Pod port -> local address, from the forward annotation.
    pub forward: HashMap<u16, String>,
}

impl PodTarget {
    pub fn of(pod: &Value) -> PodTarget {
        PodTarget {
            name: pod["metadata"]["name"].as_str().unwrap_or("").to_string(),
            uid: pod["metadata"]["uid"].as_str().unwrap_or("").to_string(),
            forward: crate::portforward::forward_map(pod),
        }
    }
}

/// True when a request asks for a plain SPDY/3.1 upgrade.
pub fn is_spdy_upgrade(req: &Request<Incoming>) -> bool {
    req.headers()
        .get(UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("SPDY/3.1"))
}

/// Answer `Upgrade: SPDY/3.1`: negotiate `X-Stream-Protocol-Version` as apimachinery's
/// `httpstream.Handshake` does, answer 101 and serve a SPDY port-forward session on the
/// upgraded connection.
pub fn upgrade(
    req: Request<Incoming>,
    pod: &Value,
) -> Result<Response<crate::http::Body>, ApiError> {
    let offered: Vec<String> = req
        .headers()
        .get_all("x-stream-protocol-version")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|p| p.trim().to_string()))
        .filter(|p| !p.is_empty())
        .collect();
    // No header at all is the legacy handshake: accepted, and no version is answered.
    if !offered.is_empty() && !offered.iter().any(|p| p == PORT_FORWARD_PROTOCOL) {
        return Err(ApiError::new(
            403,
            "Forbidden",
            format!(
                "unable to upgrade: unable to negotiate protocol: client supports {offered:?}, server supports [{PORT_FORWARD_PROTOCOL:?}]"
            ),
        ));
    }
    let target = PodTarget::of(pod);
    tokio::spawn(async move {
        if let Ok(upgraded) = hyper::upgrade::on(req).await {
            serve(TokioIo::new(upgraded), target).await;
        }
    });
    let mut resp = Response::new(http_body_util::BodyExt::boxed(http_body_util::Empty::new()));
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(UPGRADE, HeaderValue::from_static("SPDY/3.1"));
    if !offered.is_empty() {
        h.insert(
            "X-Stream-Protocol-Version",
            HeaderValue::from_static(PORT_FORWARD_PROTOCOL),
        );
    }
    Ok(resp)
}

/// Serve a SPDY session tunnelled in a WebSocket (subprotocol [`TUNNEL_PROTOCOL`]): each
/// binary message carries the next bytes of the SPDY stream, either way.
pub async fn serve_tunnel<S>(ws: WebSocketStream<S>, pod: PodTarget)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (session_io, pump_io) = tokio::io::duplex(256 * 1024);
    let session = tokio::spawn(serve(session_io, pod));
    let (mut sink, mut stream) = ws.split();
    let (mut from_session, mut to_session) = tokio::io::split(pump_io);
    let inbound = async {
        while let Some(msg) = stream.next().await {
            match msg {
                Ok(Message::Binary(b)) => {
                    if to_session.write_all(&b).await.is_err() {
                        break;
                    }
                }
                Ok(Message::Close(_)) | Err(_) => break,
                // Pings are answered by tungstenite; text is not part of the tunnel.
                Ok(_) => {}
            }
        }
        let _ = to_session.shutdown().await;
    };
    let outbound = async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match from_session.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let msg = Message::Binary(Bytes::copy_from_slice(&buf[..n]));
                    if sink.send(msg).await.is_err() {
                        break;
                    }
                }
            }
        }
        // NB: a close frame, then TLS close_notify: clients treat an abrupt end as an error.
        let _ = sink.close().await;
    };
    tokio::join!(inbound, outbound);
    let _ = session.await;
}

/// What the reader hands a forwarded connection about its two streams.
#[derive(Debug)]
enum Event {
    Data(u32, Bytes),
    Fin(u32),
    Reset(u32),
}

/// Stream id -> the forwarded connection (pair) it belongs to.
type Routes = Arc<Mutex<HashMap<u32, mpsc::Sender<Event>>>>;

fn lock(routes: &Routes) -> std::sync::MutexGuard<'_, HashMap<u32, mpsc::Sender<Event>>> {
    routes.lock().unwrap_or_else(|e| e.into_inner())
}

/// A request id whose error and data streams have not both arrived yet.
struct Pending {
    port: u16,
    error_id: Option<u32>,
    data_id: Option<u32>,
    tx: mpsc::Sender<Event>,
    rx: mpsc::Receiver<Event>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StreamType {
    Error,
    Data,
}

/// Check a new stream's headers as the kubelet does (port, stream type) and find its
/// request id (older clients send none: the kubelet then derives it from the stream id).
fn accept_stream(h: &Headers, stream_id: u32) -> Result<(StreamType, u16, String), String> {
    let port = header(h, "port").unwrap_or("");
    if port.is_empty() {
        return Err("\"port\" header is required".into());
    }
    let port: u16 = port
        .parse()
        .map_err(|e| format!("unable to parse {port:?} as a port: {e}"))?;
    if port < 1 {
        return Err(format!("port {port:?} must be > 0"));
    }
    let st = match header(h, "streamtype").unwrap_or("") {
        "" => return Err("\"streamType\" header is required".into()),
        "error" => StreamType::Error,
        "data" => StreamType::Data,
        other => return Err(format!("invalid stream type {other:?}")),
    };
    let request_id = match header(h, "requestid").unwrap_or("") {
        "" if st == StreamType::Error => stream_id.to_string(),
        "" => stream_id.saturating_sub(2).to_string(),
        id => id.to_string(),
    };
    Ok((st, port, request_id))
}

/// Serve one SPDY port-forward session on `io` until the client goes away.
pub async fn serve<S>(io: S, pod: PodTarget)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut rd, wr) = tokio::io::split(io);
    let (out, out_rx) = mpsc::channel::<Frame>(64);
    let writer = tokio::spawn(write_frames(wr, out_rx));
    let pod = Arc::new(pod);
    let routes: Routes = Arc::default();
    let mut pending: HashMap<String, Pending> = HashMap::new();
    let mut dec = HeaderDecoder::new();
    let mut last_id = 0u32;
    let mut gone_away = false;
    loop {
        let frame = match read_frame(&mut rd, &mut dec).await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => {
                if e.kind() == io::ErrorKind::InvalidData {
                    let _ = out
                        .send(Frame::GoAway {
                            last_good_stream_id: last_id,
                            status: goaway::PROTOCOL_ERROR,
                        })
                        .await;
                }
                break;
            }
        };
        match frame {
            Frame::SynStream {
                stream_id,
                flags,
                headers,
                ..
            } => {
                if gone_away {
                    continue;
                }
                // Client streams are odd and increasing (spdystream's validateStreamId).
                if stream_id % 2 == 0 || stream_id <= last_id {
                    let _ = out
                        .send(Frame::RstStream {
                            stream_id,
                            status: rst::PROTOCOL_ERROR,
                        })
                        .await;
                    continue;
                }
                last_id = stream_id;
                let (st, port, request_id) = match accept_stream(&headers, stream_id) {
                    Ok(v) => v,
                    Err(_why) => {
                        // The kubelet resets a stream its handler rejects.
                        let _ = out
                            .send(Frame::RstStream {
                                stream_id,
                                status: rst::CANCEL,
                            })
                            .await;
                        continue;
                    }
                };
                let p = pending.entry(request_id.clone()).or_insert_with(|| {
                    let (tx, rx) = mpsc::channel(256);
                    Pending {
                        port,
                        error_id: None,
                        data_id: None,
                        tx,
                        rx,
                    }
                });
                let slot = match st {
                    StreamType::Error => &mut p.error_id,
                    StreamType::Data => &mut p.data_id,
                };
                if slot.is_some() || p.port != port {
                    // "error/data stream already assigned": refuse the newcomer.
                    let _ = out
                        .send(Frame::RstStream {
                            stream_id,
                            status: rst::REFUSED_STREAM,
                        })
                        .await;
                    continue;
                }
                *slot = Some(stream_id);
                lock(&routes).insert(stream_id, p.tx.clone());
                // The kubelet replies to each stream as it arrives (the client waits for it
                // before opening the next one).
                let reply = Frame::SynReply {
                    stream_id,
                    flags: 0,
                    headers: vec![],
                };
                if out.send(reply).await.is_err() {
                    break;
                }
                if flags & FLAG_FIN != 0 {
                    let _ = p.tx.send(Event::Fin(stream_id)).await;
                }
                if let (Some(error_id), Some(data_id)) = (p.error_id, p.data_id) {
                    if let Some(p) = pending.remove(&request_id) {
                        let pair = Pair {
                            port: p.port,
                            error_id,
                            data_id,
                        };
                        tokio::spawn(forward(
                            pair,
                            pod.clone(),
                            out.clone(),
                            p.rx,
                            routes.clone(),
                        ));
                    }
                }
            }
            Frame::Data {
                stream_id,
                flags,
                data,
            } => {
                // Frames for unknown or finished streams are dropped, as spdystream does.
                let tx = lock(&routes).get(&stream_id).cloned();
                if let Some(tx) = tx {
                    if !data.is_empty() {
                        let _ = tx.send(Event::Data(stream_id, data)).await;
                    }
                    if flags & FLAG_FIN != 0 {
                        let _ = tx.send(Event::Fin(stream_id)).await;
                    }
                }
            }
            Frame::RstStream { stream_id, .. } => {
                let tx = lock(&routes).remove(&stream_id);
                if let Some(tx) = tx {
                    let _ = tx.send(Event::Reset(stream_id)).await;
                }
                // A half-open pair loses the reset stream; the other one goes too.
                let gone: Vec<String> = pending
                    .iter()
                    .filter(|(_, p)| p.error_id == Some(stream_id) || p.data_id == Some(stream_id))
                    .map(|(k, _)| k.clone())
                    .collect();
                for k in gone {
                    if let Some(p) = pending.remove(&k) {
                        let mut r = lock(&routes);
                        for id in [p.error_id, p.data_id].into_iter().flatten() {
                            r.remove(&id);
                        }
                    }
                }
            }
            // Echo the client's pings (odd ids); ours would be even, and we send none.
            Frame::Ping { id } => {
                if id % 2 == 1 && out.send(Frame::Ping { id }).await.is_err() {
                    break;
                }
            }
            // No new streams after GOAWAY; the open ones finish, then the client closes.
            Frame::GoAway { .. } => gone_away = true,
            // Windows are not enforced (see the module doc); replies and headers from a
            // client, settings and unknown control frames carry nothing for us.
            Frame::WindowUpdate { .. }
            | Frame::Settings { .. }
            | Frame::SynReply { .. }
            | Frame::Headers { .. }
            | Frame::Unknown { .. } => {}
        }
    }
    // The connection is gone: dropping every route stops the forwarders.
    lock(&routes).clear();
    drop(pending);
    drop(out);
    let _ = writer.await;
}

/// Encode and write frames in the order queued (header compression is stateful), flushing
/// whenever the queue runs dry.
async fn write_frames<W: AsyncWrite + Unpin>(mut wr: W, mut rx: mpsc::Receiver<Frame>) {
    let mut enc = HeaderEncoder::new();
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        while let Some(f) = next {
            let Ok(bytes) = f.encode(&mut enc) else {
                return;
            };
            if wr.write_all(&bytes).await.is_err() {
                return;
            }
            next = rx.try_recv().ok();
        }
        if wr.flush().await.is_err() {
            return;
        }
    }
    let _ = wr.shutdown().await;
}

/// One forwarded connection's streams.
#[derive(Clone, Copy, Debug)]
struct Pair {
    port: u16,
    error_id: u32,
    data_id: u32,
}

fn fin(stream_id: u32) -> Frame {
    Frame::Data {
        stream_id,
        flags: FLAG_FIN,
        data: Bytes::new(),
    }
}

/// After the pod side closed, how long client data may still flow in before the
/// connection is torn down (containerd's port-forward waits 1s, like socat).
const LINGER: Duration = Duration::from_secs(1);

/// Forward one connection: connect to the pod's mapped address and copy both ways, as the
/// kubelet's `portForward` (error text on the error stream, then FIN on both streams).
async fn forward(
    pair: Pair,
    pod: Arc<PodTarget>,
    out: mpsc::Sender<Frame>,
    mut events: mpsc::Receiver<Event>,
    routes: Routes,
) {
    let addr = pod.forward.get(&pair.port).cloned();
    match crate::portforward::connect(addr.as_deref()).await {
        Err(e) => {
            let msg = crate::portforward::forward_error(pair.port, &pod.name, &pod.uid, &e);
            let text = Frame::Data {
                stream_id: pair.error_id,
                flags: 0,
                data: msg.into(),
            };
            let _ = out.send(text).await;
            let _ = out.send(fin(pair.error_id)).await;
            let _ = out.send(fin(pair.data_id)).await;
        }
        Ok(tcp) => bridge(pair, tcp, &out, &mut events).await,
    }
    let mut r = lock(&routes);
    r.remove(&pair.error_id);
    r.remove(&pair.data_id);
}

async fn bridge(
    pair: Pair,
    tcp: tokio::net::TcpStream,
    out: &mpsc::Sender<Frame>,
    events: &mut mpsc::Receiver<Event>,
) {
    let (mut r, mut w) = tcp.into_split();
    let data_id = pair.data_id;
    // Pod -> client in its own task, so a slow write to the pod never stalls this way.
    let up_out = out.clone();
    let mut up = tokio::spawn(async move {
        let mut buf = vec![0u8; CHUNK];
        loop {
            match r.read(&mut buf).await {
                Ok(0) | Err(_) => return true,
                Ok(n) => {
                    let f = Frame::Data {
                        stream_id: data_id,
                        flags: 0,
                        data: Bytes::copy_from_slice(&buf[..n]),
                    };
                    if up_out.send(f).await.is_err() {
                        return false;
                    }
                }
            }
        }
    });
    let mut up_done = false;
    let mut down_done = false;
    let mut data_fin_sent = false;
    let mut reset = false;
    let linger = tokio::time::sleep(Duration::from_secs(365 * 24 * 3600));
    tokio::pin!(linger);
    loop {
        tokio::select! {
            res = &mut up, if !up_done => {
                up_done = true;
                if !matches!(res, Ok(true)) {
                    break; // the session is gone
                }
                // The pod closed its side: half-close the data stream at once.
                data_fin_sent = true;
                if out.send(fin(data_id)).await.is_err() || down_done {
                    break;
                }
                linger.as_mut().reset(tokio::time::Instant::now() + LINGER);
            }
            ev = events.recv() => match ev {
                Some(Event::Data(id, b)) if id == data_id => {
                    if !down_done && w.write_all(&b).await.is_err() {
                        break;
                    }
                }
                Some(Event::Fin(id)) if id == data_id => {
                    // The client will send no more: pass the half-close on to the pod.
                    down_done = true;
                    let _ = w.shutdown().await;
                    if up_done {
                        break;
                    }
                }
                Some(Event::Reset(id)) if id == data_id => {
                    reset = true;
                    break;
                }
                // The client only ever half-closes its error stream.
                Some(_) => {}
                None => {
                    // The session ended: nobody to tell.
                    up.abort();
                    return;
                }
            },
            _ = &mut linger, if up_done => break,
        }
    }
    up.abort();
    drop(w);
    if !data_fin_sent && !reset {
        let _ = out.send(fin(data_id)).await;
    }
    let _ = out.send(fin(pair.error_id)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> Headers {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    fn adler32(data: &[u8]) -> u32 {
        let (mut a, mut b) = (1u32, 0u32);
        for &x in data {
            a = (a + u32::from(x)) % 65521;
            b = (b + a) % 65521;
        }
        (b << 16) | a
    }

    /// Encode, then decode from the bytes as a peer reading the wire would.
    async fn round_trip(frames: &[Frame]) -> Vec<Frame> {
        let mut enc = HeaderEncoder::new();
        let mut wire = vec![];
        for f in frames {
            wire.extend_from_slice(&f.encode(&mut enc).unwrap());
        }
        let mut dec = HeaderDecoder::new();
        let mut r = &wire[..];
        let mut got = vec![];
        while let Some(f) = read_frame(&mut r, &mut dec).await.unwrap() {
            got.push(f);
        }
        got
    }

    #[test]
    fn the_dictionary_is_the_spdy3_one() {
        assert_eq!(DICTIONARY.len(), 1423);
        assert_eq!(adler32(&DICTIONARY), DICTIONARY_ID);
        assert!(DICTIONARY.starts_with(b"\0\0\0\x07options\0\0\0\x04head"));
        assert!(DICTIONARY.ends_with(b",utf-,*,enq=0."));
    }

    #[test]
    fn header_blocks_round_trip_through_one_compression_context() {
        let mut enc = HeaderEncoder::new();
        let mut dec = HeaderDecoder::new();
        let blocks = [
            h(&[
                ("streamtype", "error"),
                ("port", "5432"),
                ("requestid", "0"),
            ]),
            h(&[("streamtype", "data"), ("port", "5432"), ("requestid", "0")]),
            h(&[]),
            h(&[("multi", "a\0b"), ("x-long", &"v".repeat(70_000))]),
        ];
        for (i, b) in blocks.iter().enumerate() {
            let z = enc.encode(b).unwrap();
            if i == 0 {
                // zlib header for best compression with a preset dictionary, then its id,
                // as Go's zlib.NewWriterLevelDict(.., BestCompression, dict) writes.
                assert_eq!(&z[..6], &[0x78, 0xf9, 0xe3, 0xc6, 0xa7, 0xc2]);
            }
            // Each block ends in a sync flush (empty stored block).
            assert!(z.ends_with(&[0x00, 0x00, 0xff, 0xff]), "block {i}");
            assert_eq!(&dec.decode(&z).unwrap(), b, "block {i}");
        }
        assert_eq!(header(&blocks[3], "MULTI"), Some("a"));
        assert_eq!(header(&blocks[3], "none"), None);
    }

    #[test]
    fn header_blocks_from_another_zlib_decode() {
        // Made by CPython's zlib (compressobj(9, zdict=DICTIONARY), Z_SYNC_FLUSH after each
        // block): an independent deflate, one context for both blocks.
        let b1: &[u8] = &[
            0x78, 0xf9, 0xe3, 0xc6, 0xa7, 0xc2, 0x02, 0x25, 0x3a, 0x70, 0x3a, 0x2b, 0x29, 0x4a,
            0x4d, 0xcc, 0x85, 0x16, 0x25, 0xac, 0xa9, 0xa0, 0x80, 0x86, 0x14, 0xcb, 0x45, 0xe0,
            0x1c, 0x60, 0x6a, 0x62, 0x6c, 0x04, 0xa4, 0x39, 0x8b, 0x20, 0xd1, 0x98, 0x09, 0x4a,
            0xde, 0x8c, 0x06, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff,
        ];
        let b2: &[u8] = &[
            0xc2, 0xaa, 0x19, 0x54, 0x0e, 0x25, 0x12, 0xd6, 0x0b, 0x00, 0x00, 0x00, 0xff, 0xff,
        ];
        let mut dec = HeaderDecoder::new();
        assert_eq!(
            dec.decode(b1).unwrap(),
            h(&[
                ("streamtype", "error"),
                ("port", "5432"),
                ("requestid", "0")
            ])
        );
        assert_eq!(
            dec.decode(b2).unwrap(),
            h(&[("streamtype", "data"), ("port", "5432"), ("requestid", "0")])
        );
    }

    #[test]
    fn a_block_without_the_dictionary_or_garbage_is_refused() {
        // zlib without a preset dictionary: a valid stream, but not SPDY's.
        let mut plain = Compress::new(Compression::best(), true);
        let mut z = Vec::with_capacity(256);
        plain
            .compress_vec(&raw_block(&h(&[("a", "b")])), &mut z, FlushCompress::Sync)
            .unwrap();
        assert!(
            HeaderDecoder::new().decode(&z).is_ok(),
            "no dictionary needed"
        );
        assert!(HeaderDecoder::new().decode(b"not zlib at all").is_err());
        // A block cut after the zlib header inflates to a truncated name/value list.
        let mut enc = HeaderEncoder::new();
        let good = enc.encode(&h(&[("a", "b")])).unwrap();
        assert!(HeaderDecoder::new().decode(&good[..6]).is_err());
        // A preset dictionary other than SPDY's.
        let mut other = Compress::new(Compression::best(), true);
        other.set_dictionary(b"not the spdy dictionary").unwrap();
        let mut z = Vec::with_capacity(256);
        other
            .compress_vec(&raw_block(&h(&[("a", "b")])), &mut z, FlushCompress::Sync)
            .unwrap();
        let err = HeaderDecoder::new().decode(&z).unwrap_err();
        assert!(err.to_string().contains("dictionary"), "{err}");
    }

    #[test]
    fn fixed_frames_have_the_spdy3_layout() {
        let mut enc = HeaderEncoder::new();
        let enc = &mut enc;
        assert_eq!(
            Frame::Ping { id: 1 }.encode(enc).unwrap(),
            [0x80, 0x03, 0x00, 0x06, 0x00, 0x00, 0x00, 0x04, 0, 0, 0, 1]
        );
        assert_eq!(
            Frame::RstStream {
                stream_id: 3,
                status: rst::CANCEL
            }
            .encode(enc)
            .unwrap(),
            [0x80, 0x03, 0x00, 0x03, 0x00, 0x00, 0x00, 0x08, 0, 0, 0, 3, 0, 0, 0, 5]
        );
        assert_eq!(
            Frame::GoAway {
                last_good_stream_id: 7,
                status: goaway::OK
            }
            .encode(enc)
            .unwrap(),
            [0x80, 0x03, 0x00, 0x07, 0x00, 0x00, 0x00, 0x08, 0, 0, 0, 7, 0, 0, 0, 0]
        );
        assert_eq!(
            Frame::WindowUpdate {
                stream_id: 1,
                delta: 65536
            }
            .encode(enc)
            .unwrap(),
            [0x80, 0x03, 0x00, 0x09, 0x00, 0x00, 0x00, 0x08, 0, 0, 0, 1, 0, 1, 0, 0]
        );
        assert_eq!(
            Frame::Data {
                stream_id: 5,
                flags: FLAG_FIN,
                data: Bytes::from_static(b"abc")
            }
            .encode(enc)
            .unwrap(),
            [0, 0, 0, 5, 0x01, 0, 0, 3, b'a', b'b', b'c']
        );
        assert_eq!(
            Frame::Settings {
                flags: 0,
                entries: vec![(0, 7, 65536)]
            }
            .encode(enc)
            .unwrap(),
            [0x80, 0x03, 0x00, 0x04, 0, 0, 0, 12, 0, 0, 0, 1, 0, 0, 0, 7, 0, 1, 0, 0]
        );
        let reply = Frame::SynReply {
            stream_id: 1,
            flags: 0,
            headers: vec![],
        }
        .encode(enc)
        .unwrap();
        assert_eq!(&reply[..4], [0x80, 0x03, 0x00, 0x02]);
        assert_eq!(reply.len() - 8, be32(&reply, 4) as usize);
        assert_eq!(&reply[8..12], [0, 0, 0, 1]);
    }

    #[tokio::test]
    async fn every_frame_type_round_trips() {
        let frames = vec![
            Frame::SynStream {
                stream_id: 1,
                associated_to: 0,
                priority: 3,
                slot: 0,
                flags: FLAG_FIN | FLAG_UNIDIRECTIONAL,
                headers: h(&[
                    ("streamtype", "error"),
                    ("port", "5432"),
                    ("requestid", "0"),
                ]),
            },
            Frame::SynReply {
                stream_id: 1,
                flags: 0,
                headers: vec![],
            },
            Frame::Headers {
                stream_id: 1,
                flags: FLAG_FIN,
                headers: h(&[("x", "y")]),
            },
            Frame::RstStream {
                stream_id: 3,
                status: rst::INVALID_STREAM,
            },
            Frame::Settings {
                flags: 1,
                entries: vec![(1, 4, 100), (0, 7, 65536)],
            },
            Frame::Ping { id: 0xffff_fffe },
            Frame::GoAway {
                last_good_stream_id: 9,
                status: goaway::PROTOCOL_ERROR,
            },
            Frame::WindowUpdate {
                stream_id: 0,
                delta: 0x7fff_ffff,
            },
            Frame::Data {
                stream_id: 3,
                flags: 0,
                data: Bytes::from(vec![7u8; 100_000]),
            },
            Frame::Data {
                stream_id: 3,
                flags: FLAG_FIN,
                data: Bytes::new(),
            },
            Frame::Unknown {
                kind: 10,
                flags: 0,
                payload: Bytes::from_static(b"credential"),
            },
        ];
        assert_eq!(round_trip(&frames).await, frames);
    }

    #[tokio::test]
    async fn malformed_frames_are_errors() {
        let mut dec = HeaderDecoder::new();
        // SPDY/2 control frame.
        let v2 = [0x80, 0x02, 0x00, 0x06, 0, 0, 0, 4, 0, 0, 0, 1];
        assert!(read_frame(&mut &v2[..], &mut dec).await.is_err());
        // RST_STREAM with a 4-byte payload.
        let short = [0x80, 0x03, 0x00, 0x03, 0, 0, 0, 4, 0, 0, 0, 1];
        assert!(read_frame(&mut &short[..], &mut dec).await.is_err());
        // A frame cut off mid-payload.
        let cut = [0, 0, 0, 1, 0, 0, 0, 9, b'x'];
        assert!(read_frame(&mut &cut[..], &mut dec).await.is_err());
        // Nothing at all is a clean end.
        assert!(read_frame(&mut &[][..], &mut dec).await.unwrap().is_none());
    }

    #[test]
    fn streams_are_checked_as_the_kubelet_does() {
        let ok = accept_stream(
            &h(&[("streamtype", "data"), ("port", "5432"), ("requestid", "4")]),
            9,
        );
        assert_eq!(ok, Ok((StreamType::Data, 5432, "4".into())));
        // Old clients send no request id: derived from the stream ids (error first).
        assert_eq!(
            accept_stream(&h(&[("streamtype", "error"), ("port", "80")]), 5),
            Ok((StreamType::Error, 80, "5".into()))
        );
        assert_eq!(
            accept_stream(&h(&[("streamtype", "data"), ("port", "80")]), 7),
            Ok((StreamType::Data, 80, "5".into()))
        );
        for bad in [
            h(&[("streamtype", "data")]),
            h(&[("streamtype", "data"), ("port", "0")]),
            h(&[("streamtype", "data"), ("port", "http")]),
            h(&[("port", "80")]),
            h(&[("streamtype", "resize"), ("port", "80")]),
        ] {
            assert!(accept_stream(&bad, 1).is_err(), "{bad:?}");
        }
    }

    /// A SPDY client for driving [`serve`] directly.
    struct Client {
        enc: HeaderEncoder,
        dec: HeaderDecoder,
        rd: tokio::io::ReadHalf<tokio::io::DuplexStream>,
        wr: tokio::io::WriteHalf<tokio::io::DuplexStream>,
    }

    impl Client {
        fn start(pod: PodTarget) -> Client {
            let (a, b) = tokio::io::duplex(1 << 20);
            tokio::spawn(serve(b, pod));
            let (rd, wr) = tokio::io::split(a);
            Client {
                enc: HeaderEncoder::new(),
                dec: HeaderDecoder::new(),
                rd,
                wr,
            }
        }

        async fn send(&mut self, f: Frame) {
            let b = f.encode(&mut self.enc).unwrap();
            self.wr.write_all(&b).await.unwrap();
        }

        async fn open(&mut self, id: u32, kind: &str, port: u16, request: &str) {
            self.send(Frame::SynStream {
                stream_id: id,
                associated_to: 0,
                priority: 0,
                slot: 0,
                flags: 0,
                headers: h(&[
                    ("streamtype", kind),
                    ("port", &port.to_string()),
                    ("requestid", request),
                ]),
            })
            .await;
        }

        async fn next(&mut self) -> Option<Frame> {
            tokio::time::timeout(
                Duration::from_secs(5),
                read_frame(&mut self.rd, &mut self.dec),
            )
            .await
            .expect("a frame within 5s")
            .unwrap()
        }
    }

    fn data(stream_id: u32, flags: u8, d: &[u8]) -> Frame {
        Frame::Data {
            stream_id,
            flags,
            data: Bytes::copy_from_slice(d),
        }
    }

    #[tokio::test]
    async fn a_session_forwards_answers_pings_and_reports_errors() {
        let backend = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = backend.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = backend.accept().await {
                tokio::spawn(async move {
                    let mut buf = vec![];
                    // Read to EOF, then answer and close: tests the half-close both ways.
                    s.read_to_end(&mut buf).await.unwrap();
                    buf.reverse();
                    s.write_all(&buf).await.unwrap();
                });
            }
        });
        let pod = PodTarget {
            name: "db-0".into(),
            uid: "u-1".into(),
            forward: [(5432, addr.to_string())].into(),
        };
        let mut c = Client::start(pod);

        c.send(Frame::Ping { id: 1 }).await;
        assert_eq!(c.next().await, Some(Frame::Ping { id: 1 }));

        // Error stream first, half-closed at once (as client-go does), then the data stream.
        c.open(1, "error", 5432, "0").await;
        assert_eq!(
            c.next().await,
            Some(Frame::SynReply {
                stream_id: 1,
                flags: 0,
                headers: vec![]
            })
        );
        c.send(data(1, FLAG_FIN, b"")).await;
        c.open(3, "data", 5432, "0").await;
        assert!(matches!(
            c.next().await,
            Some(Frame::SynReply { stream_id: 3, .. })
        ));
        c.send(data(3, 0, b"olleh")).await;
        c.send(data(3, FLAG_FIN, b"")).await;
        let mut got = vec![];
        let mut fins = vec![];
        while fins.len() < 2 {
            match c.next().await.unwrap() {
                Frame::Data {
                    stream_id,
                    flags,
                    data,
                } => {
                    if stream_id == 3 {
                        got.extend_from_slice(&data);
                    } else {
                        assert!(data.is_empty(), "nothing on the error stream");
                    }
                    if flags & FLAG_FIN != 0 {
                        fins.push(stream_id);
                    }
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(got, b"hello");
        assert!(fins.contains(&1) && fins.contains(&3), "{fins:?}");

        // A port with no mapping: the error text on the error stream, then FIN on both.
        c.open(5, "error", 6379, "1").await;
        c.next().await.unwrap();
        c.open(7, "data", 6379, "1").await;
        c.next().await.unwrap();
        let mut text = vec![];
        loop {
            match c.next().await.unwrap() {
                Frame::Data {
                    stream_id: 5,
                    flags,
                    data,
                } => {
                    text.extend_from_slice(&data);
                    if flags & FLAG_FIN != 0 {
                        break;
                    }
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        let text = String::from_utf8(text).unwrap();
        assert!(
            text.starts_with("error forwarding port 6379 to pod db-0, uid u-1: "),
            "{text}"
        );
        assert!(text.ends_with("connection refused"), "{text}");
        assert_eq!(c.next().await, Some(data(7, FLAG_FIN, b"")));

        // Bad streams are reset; stream ids must grow.
        c.open(9, "bogus", 80, "2").await;
        assert_eq!(
            c.next().await,
            Some(Frame::RstStream {
                stream_id: 9,
                status: rst::CANCEL
            })
        );
        c.open(3, "data", 80, "3").await;
        assert_eq!(
            c.next().await,
            Some(Frame::RstStream {
                stream_id: 3,
                status: rst::PROTOCOL_ERROR
            })
        );

        // After GOAWAY no new streams; the client closing ends the session.
        c.send(Frame::GoAway {
            last_good_stream_id: 0,
            status: goaway::OK,
        })
        .await;
        c.open(11, "error", 5432, "4").await;
        c.send(Frame::Ping { id: 3 }).await;
        assert_eq!(
            c.next().await,
            Some(Frame::Ping { id: 3 }),
            "no reply to 11"
        );
        c.wr.shutdown().await.unwrap();
        assert_eq!(c.next().await, None, "the server closes too");
    }

    #[tokio::test]
    async fn a_reset_data_stream_tears_the_connection_down() {
        let backend = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = backend.local_addr().unwrap();
        let (closed_tx, closed_rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let (mut s, _) = backend.accept().await.unwrap();
            let mut buf = vec![];
            let _ = s.read_to_end(&mut buf).await;
            let _ = closed_tx.send(buf);
        });
        let pod = PodTarget {
            forward: [(80, addr.to_string())].into(),
            ..PodTarget::default()
        };
        let mut c = Client::start(pod);
        c.open(1, "error", 80, "0").await;
        c.next().await.unwrap();
        c.open(3, "data", 80, "0").await;
        c.next().await.unwrap();
        c.send(data(3, 0, b"partial")).await;
        c.send(Frame::RstStream {
            stream_id: 3,
            status: rst::CANCEL,
        })
        .await;
        let seen = tokio::time::timeout(Duration::from_secs(5), closed_rx)
            .await
            .expect("the pod connection is closed")
            .unwrap();
        assert_eq!(seen, b"partial");
        // Only the error stream is finished (the data stream is gone).
        assert_eq!(c.next().await, Some(data(1, FLAG_FIN, b"")));
    }
}
