"""schemathesis hooks of this repository, loaded through `hooks` in schemathesis.toml.

An upload's file part may declare a spreadsheet or JSON-lines media type (the schema lists them
in the part's `encoding`), which schemathesis has no serializer for: a generated request whose
file part is not bytes (negative generation: a number, an object) could not be sent at all and
was reported as an error. Such a part is sent as its bytes, as `application/octet-stream` is:
bytes as they are, any other value as its JSON text. The server must read or refuse it.
"""

import schemathesis

FILE_MEDIA_TYPES = ["application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    "application/x-ndjson", "application/jsonl"]

schemathesis.serializer.alias(FILE_MEDIA_TYPES, "application/octet-stream")
