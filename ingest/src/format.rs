//! Names of the supported input formats.

use std::fmt;
use std::str::FromStr;

/// An input format, named as in the `format` parameter and the `source` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// AWS Application Load Balancer access logs.
    AwsAlb,
    /// nginx and Apache "common" and "combined" access logs.
    Clf,
    /// AWS API Gateway JSON access logs.
    AwsApiGateway,
}

impl Format {
    pub const ALL: [Format; 3] = [Format::AwsAlb, Format::Clf, Format::AwsApiGateway];

    pub fn name(self) -> &'static str {
        match self {
            Format::AwsAlb => "aws_alb",
            Format::Clf => "clf",
            Format::AwsApiGateway => "aws_apigateway",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Error for a format name that apitrail does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown format {name:?}; supported formats: aws_alb, clf, aws_apigateway")]
pub struct UnknownFormat {
    pub name: String,
}

impl FromStr for Format {
    type Err = UnknownFormat;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Format::ALL
            .into_iter()
            .find(|format| format.name() == name)
            .ok_or_else(|| UnknownFormat {
                name: name.to_string(),
            })
    }
}
