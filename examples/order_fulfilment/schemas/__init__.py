"""The order fulfilment system's Avro contracts, one ``<owner>/<Event>.avsc`` each, namespace ``shop.<owner>``
(package data)."""
