"""OpenGym streams, the library: the runtime components are declared on (``component``, ``runtime``,
``saga``, ``tables``, ``checks``), its catalogs (``topic``, ``catalog``, ``system``), the codec and
contracts, the observer engine and its component (``observer``, ``observe``), the compatibility gate,
the test harness (``testing``) and the ``opengym`` command line. It imports no system: it is handed one."""
