{
  "targets": [
    {
      "target_name": "fleetmq",
      "sources": [
        "native/addon.cc",
        "native/epoch.cc",
        "native/match.cc",
        "native/slab.cc",
        "native/topic.cc",
        "native/trie.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": [
        "NAPI_VERSION=8",
        "NAPI_DISABLE_CPP_EXCEPTIONS",
        "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"
      ],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-std=c++17", "-O3", "-fvisibility=hidden"],
      "cflags": ["-O3"]
    }
  ]
}
