//! What the HTTP listeners count, for the HTTP transport's `connections` query and `/metrics`:
//! each open connection (a guard in the connection's extensions, dropped with the connection),
//! and each request being answered, parked long-polls included (a guard held while the request
//! is handled, as Janus's HTTP transport keeps a request's message until it is answered).

use actix_web::body::MessageBody;
use actix_web::dev::{Extensions, ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use prometheus::IntGauge;

/// One count in its gauge, for as long as it lives.
pub struct Counted(IntGauge);

impl Counted {
    pub fn new(gauge: IntGauge) -> Self {
        gauge.inc();
        Self(gauge)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// For a listener's `on_connect`: counts the connection in `gauge` until it closes.
pub fn connection(gauge: &IntGauge, extensions: &mut Extensions) {
    extensions.insert(Counted::new(gauge.clone()));
}

/// Middleware (`middleware::from_fn`): the request counts in the gateway's
/// `http_requests_in_flight` until its handler has answered.
pub async fn request(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let gauge =
        req.app_data::<actix_web::web::Data<crate::api::Dispatcher>>().map(|d| d.metrics().http_requests().clone());
    let _held = gauge.map(Counted::new);
    next.call(req).await
}
