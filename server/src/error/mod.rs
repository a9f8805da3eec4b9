//! The REST API's error type, [`ApiError`]: every error under `/api/v1/` (and `/api/session`, and the page
//! scripts' JSON endpoints) is an RFC 9457 problem, `application/problem+json`:
//!
//! ```json
//! {"type": "/api/problems/invalid_input", "title": "Invalid input", "status": 400,
//!  "detail": "to: the end must be after the start", "code": "invalid_input", "field": "to",
//!  "request_id": "3f1c…"}
//! ```
//!
//! `type` is a stable URI per problem code (listed, with a sentence each, at `GET /api/problems/{code}` and in
//! [`PROBLEMS`]); `code` is the same code as a plain member for clients to switch on; `field` names the input at
//! fault (`invalid_input`), `problems` lists a strategy's compile errors (`invalid_strategy`); `request_id` is the
//! response's `x-request-id` (filled in by [`problem_details`], the middleware that also turns every other error
//! answer under the API's paths — unknown methods, timeouts, panics, body limits — into a problem). 429 and 503
//! carry `Retry-After`. Internal errors are logged with their cause and answered with an opaque detail.

mod problem;

pub use problem::*;
