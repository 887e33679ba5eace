{
  "targets": [
    {
      "target_name": "kmu11_pkcs11",
      "sources": [
        "native/addon.cc",
        "native/attribute_read.cc",
        "native/calls_cipher.cc",
        "native/calls_crypto.cc",
        "native/calls_general.cc",
        "native/calls_key.cc",
        "native/calls_object.cc",
        "native/calls_session.cc",
        "native/dispatcher.cc",
        "native/errors.cc",
        "native/job.cc",
        "native/library.cc",
        "native/marshal.cc"
      ],
      "dependencies": [
        "<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"
      ],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-O3", "-fno-exceptions"],
      "cflags_cc!": ["-O3", "-fno-exceptions", "-std=gnu++17", "-std=gnu++20"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-fvisibility=hidden"],
      "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wextra", "-fexceptions"],
      "libraries": ["-ldl"],
      "conditions": [
        ["OS=='mac'", {
          "xcode_settings": {
            "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
            "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
            "GCC_OPTIMIZATION_LEVEL": "2"
          }
        }]
      ]
    }
  ]
}
