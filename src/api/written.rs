use poem_openapi::Object;

/// The result of a write: committed when returned.
#[derive(Debug, Object)]
#[oai(skip_serializing_if_is_none)]
pub struct Written {
    /// Position of the last event the write recorded (absent when nothing changed). Pass it as
    /// `position` to a read to see the write reflected (the read waits briefly for the read
    /// model).
    pub position: Option<i64>,
}

impl Written {
    pub fn at(position: Option<i64>) -> poem_openapi::payload::Json<Self> {
        poem_openapi::payload::Json(Self { position })
    }
}
