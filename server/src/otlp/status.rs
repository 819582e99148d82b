//! The error messages of OTLP: `google.rpc.Status`, the body of every
//! failed OTLP/HTTP response, and `google.rpc.RetryInfo`, the retry delay
//! of a retryable gRPC error.
//!
//! The messages are declared here with prost's derive, field for field as
//! in `google/rpc/status.proto` and `google/rpc/error_details.proto`.

use prost::Message;

/// `google.rpc.Status`.
#[derive(Clone, PartialEq, Message)]
pub struct RpcStatus {
    /// A `google.rpc.Code` value, the same numbers as gRPC status codes.
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
    #[prost(message, repeated, tag = "3")]
    pub details: Vec<prost_types::Any>,
}

/// `google.rpc.RetryInfo`.
#[derive(Clone, PartialEq, Message)]
pub struct RetryInfo {
    #[prost(message, optional, tag = "1")]
    pub retry_delay: Option<prost_types::Duration>,
}

/// Type URL of [`RetryInfo`] inside an `Any`.
const RETRY_INFO_TYPE_URL: &str = "type.googleapis.com/google.rpc.RetryInfo";

impl RpcStatus {
    pub fn new(code: tonic::Code, message: impl Into<String>) -> Self {
        RpcStatus {
            code: code as i32,
            message: message.into(),
            details: Vec::new(),
        }
    }

    /// Adds a `RetryInfo` detail with a retry delay of `seconds`.
    pub fn with_retry_delay(mut self, seconds: u64) -> Self {
        let info = RetryInfo {
            retry_delay: Some(prost_types::Duration {
                seconds: i64::try_from(seconds).unwrap_or(i64::MAX),
                nanos: 0,
            }),
        };
        self.details.push(prost_types::Any {
            type_url: RETRY_INFO_TYPE_URL.to_owned(),
            value: info.encode_to_vec(),
        });
        self
    }

    /// Converts the status to a gRPC error whose `grpc-status-details-bin`
    /// carries this message, details included.
    pub fn into_grpc(self) -> tonic::Status {
        let code = tonic::Code::from_i32(self.code);
        let details = bytes::Bytes::from(self.encode_to_vec());
        tonic::Status::with_details(code, self.message, details)
    }

    /// Writes the status in protobuf's JSON mapping, without details.
    pub fn to_json(&self) -> String {
        serde_json::json!({ "code": self.code, "message": self.message }).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delay_travels_in_grpc_details() {
        let status = RpcStatus::new(tonic::Code::Unavailable, "the store is shutting down")
            .with_retry_delay(5)
            .into_grpc();
        assert_eq!(status.code(), tonic::Code::Unavailable);
        assert_eq!(status.message(), "the store is shutting down");
        let decoded = RpcStatus::decode(status.details()).expect("details decode");
        assert_eq!(decoded.details.len(), 1);
        assert_eq!(decoded.details[0].type_url, RETRY_INFO_TYPE_URL);
        let info = RetryInfo::decode(decoded.details[0].value.as_slice()).expect("RetryInfo");
        assert_eq!(info.retry_delay.map(|delay| delay.seconds), Some(5));
    }

    #[test]
    fn json_form() {
        let status = RpcStatus::new(tonic::Code::InvalidArgument, "bad \"body\"");
        assert_eq!(status.to_json(), r#"{"code":3,"message":"bad \"body\""}"#);
    }
}
