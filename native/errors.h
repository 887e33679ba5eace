// CK_RV → JS Error carrying code and fn.
#ifndef KMU11_ERRORS_H
#define KMU11_ERRORS_H

#include <napi.h>

#include "pkcs11.h"

namespace kmu11 {

// What the registered factory (code, fn) builds for a failed call.
Napi::Value MakeCkError(Napi::Env env, CK_RV rv, const char* fn);

}  // namespace kmu11

#endif
