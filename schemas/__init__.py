"""OpenGym's Avro contracts, one ``<owner>/<Event>.avsc`` each (package data)."""
