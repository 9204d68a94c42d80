"""The OpenGym components, one Faust app per package (``faust -A agents.<component> worker``), and the
system they make up (:mod:`agents.system`)."""
