//! The Admin API over WebSocket: subprotocol `janus-admin-protocol` on `admin_ws_port` (off
//! unless configured, as Janus's `admin_ws`). Each text frame is one Admin request, answered in
//! the order received (the connection waits for each reply before reading the next); ids travel
//! in the body (`session_id`, `handle_id`), as Janus's admin WebSocket takes them.

use crate::api::Dispatcher;
use actix::prelude::*;
use actix_web::{web, HttpRequest, HttpResponse};
use actix_web_actors::ws;
use bytes::Bytes;
use shared::janus::request::Transport;

pub const SUBPROTOCOL: &str = "janus-admin-protocol";

/// `GET /` (any path) on the admin WebSocket port.
pub async fn handshake(
    req: HttpRequest,
    stream: web::Payload,
    d: web::Data<Dispatcher>,
) -> actix_web::Result<HttpResponse> {
    if let Err(refused) = super::ws::check_handshake(&req, SUBPROTOCOL) {
        return Ok(refused);
    }
    let d = d.get_ref().clone();
    let limit = d.cfg().max_message_size;
    ws::WsResponseBuilder::new(
        AdminWs { _open: super::counted::Counted::new(d.metrics().admin_ws_connections().clone()), d },
        &req,
        stream,
    )
    .protocols(&[SUBPROTOCOL])
    .frame_size(limit)
    .start()
}

struct AdminWs {
    d: Dispatcher,
    /// Counts the connection while it is open (the WebSocket transport's `connections`).
    _open: super::counted::Counted,
}

impl Actor for AdminWs {
    type Context = ws::WebsocketContext<Self>;
}

impl AdminWs {
    fn request(&mut self, bytes: Bytes, ctx: &mut ws::WebsocketContext<Self>) {
        let d = self.d.clone();
        let answer = async move { crate::admin_api::handle(&d, &bytes, None).await };
        ctx.wait(
            answer
                .into_actor(self)
                .map(|reply, act, ctx| ctx.text(act.d.layout(Transport::Ws).lay_out(reply.to_string()))),
        );
    }
}

impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for AdminWs {
    fn handle(&mut self, msg: Result<ws::Message, ws::ProtocolError>, ctx: &mut Self::Context) {
        match msg {
            Ok(ws::Message::Text(t)) => self.request(t.into_bytes(), ctx),
            Ok(ws::Message::Binary(b)) => self.request(b, ctx),
            Ok(ws::Message::Ping(p)) => ctx.pong(&p),
            Ok(ws::Message::Close(reason)) => {
                ctx.close(reason);
                ctx.stop();
            }
            Ok(_) => {}
            Err(e) => {
                ctx.close(Some(ws::CloseReason { code: super::ws::close_code(&e), description: Some(e.to_string()) }));
                ctx.stop();
            }
        }
    }
}
