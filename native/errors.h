// CK_RV → JS Error carrying code, ckr and fn.
#ifndef KMU11_ERRORS_H
#define KMU11_ERRORS_H

#include <napi.h>

#include <string>

#include "pkcs11.h"

namespace kmu11 {

// "CKR_PIN_INCORRECT"; vendor range → "CKR_VENDOR_DEFINED"; otherwise "CKR_0x…".
std::string CkrName(CK_RV rv);

// An Error (or whatever the registered factory builds) for a failed call.
Napi::Value MakeCkError(Napi::Env env, CK_RV rv, const char* fn);

}  // namespace kmu11

#endif
