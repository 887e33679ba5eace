// Object search, attributes, copy, destroy.
#include <vector>

#include "addon_data.h"
#include "attribute_read.h"
#include "job.h"
#include "marshal.h"
#include "module_wrap.h"

namespace kmu11 {

// --------------------------- C_FindObjectsInit + C_FindObjects* + C_FindObjectsFinal
class FindObjectsJob : public Job {
 public:
  FindObjectsJob(std::shared_ptr<Library> lib, CK_SESSION_HANDLE session)
      : Job(std::move(lib), "C_FindObjectsInit"), session_(session) {}
  Template filter;

 protected:
  CK_RV Run(CK_FUNCTION_LIST* f) override {
    CK_RV rv = f->C_FindObjectsInit(session_, filter.data(), filter.size());
    if (rv == CKR_OPERATION_ACTIVE && f->C_FindObjectsFinal(session_) == CKR_OK) {
      // A search left open (its C_FindObjectsFinal failed) would block every later search on
      // this session: end it and start ours.
      rv = f->C_FindObjectsInit(session_, filter.data(), filter.size());
    }
    if (rv != CKR_OK) return rv;
    fn_ = "C_FindObjects";
    CK_OBJECT_HANDLE batch[256];
    for (;;) {
      CK_ULONG found = 0;
      rv = f->C_FindObjects(session_, batch, sizeof batch / sizeof batch[0], &found);
      if (rv != CKR_OK || found == 0) break;
      // A module that reports more than it was given room for, or never stops, is broken.
      if (found > sizeof batch / sizeof batch[0] || handles_.size() > kMaxListCount * 16) {
        rv = CKR_GENERAL_ERROR;
        break;
      }
      handles_.insert(handles_.end(), batch, batch + found);
    }
    // Always end the search so the session stays usable.
    CK_RV finalRv = f->C_FindObjectsFinal(session_);
    if (rv != CKR_OK) return rv;
    fn_ = "C_FindObjectsFinal";
    return finalRv;
  }
  napi_value Result(napi_env env) override { return FromHandleArray(env, handles_.data(), handles_.size(), lib_->handles.objects); }

 private:
  CK_SESSION_HANDLE session_;
  std::vector<CK_OBJECT_HANDLE> handles_;
};

Napi::Value ModuleWrap::FindObjects(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  CK_SESSION_HANDLE session = SessionArg(info, 0);
  auto job = std::make_unique<FindObjectsJob>(lib_, session);
  job->filter.Parse(env, Arg(info, 1), "template", true);
  return Job::Queue(info.Env(), std::move(job), session);
}

// ---------------------------------------------------- C_GetAttributeValue
// Guessed buffers first, the size query only where one did not fit (attribute_read.h).
class GetAttributeValueJob : public Job {
 public:
  GetAttributeValueJob(std::shared_ptr<Library> lib, CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object,
                       std::vector<CK_ATTRIBUTE_TYPE> types)
      : Job(std::move(lib), "C_GetAttributeValue"), session_(session), object_(object), read_(std::move(types)) {}

 protected:
  CK_RV Run(CK_FUNCTION_LIST* f) override { return read_.Read(f, session_, object_); }
  napi_value Result(napi_env env) override { return read_.ToJs(env); }

 private:
  CK_SESSION_HANDLE session_;
  CK_OBJECT_HANDLE object_;
  AttributeRead read_;
};

Napi::Value ModuleWrap::GetAttributeValue(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  CK_SESSION_HANDLE session = SessionArg(info, 0);
  CK_OBJECT_HANDLE object = ObjectArg(info, 1, "object");
  std::vector<CK_ATTRIBUTE_TYPE> types = ToUlongArray(env, Arg(info, 2), "types");
  auto job = std::make_unique<GetAttributeValueJob>(lib_, session, object, std::move(types));
  return Job::Queue(info.Env(), std::move(job), session);
}

// ---------------------------------------------------- C_SetAttributeValue
class SetAttributeValueJob : public Job {
 public:
  SetAttributeValueJob(std::shared_ptr<Library> lib, CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object)
      : Job(std::move(lib), "C_SetAttributeValue"), session_(session), object_(object) {}
  Template values;

 protected:
  CK_RV Run(CK_FUNCTION_LIST* f) override {
    return f->C_SetAttributeValue(session_, object_, values.data(), values.size());
  }

 private:
  CK_SESSION_HANDLE session_;
  CK_OBJECT_HANDLE object_;
};

Napi::Value ModuleWrap::SetAttributeValue(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  CK_SESSION_HANDLE session = SessionArg(info, 0);
  CK_OBJECT_HANDLE object = ObjectArg(info, 1, "object");
  auto job = std::make_unique<SetAttributeValueJob>(lib_, session, object);
  job->values.Parse(env, Arg(info, 2), "template");
  return Job::Queue(info.Env(), std::move(job), session);
}

// ----------------------------------------------------------- C_CopyObject
class CopyObjectJob : public Job {
 public:
  CopyObjectJob(std::shared_ptr<Library> lib, CK_SESSION_HANDLE session, CK_OBJECT_HANDLE object)
      : Job(std::move(lib), "C_CopyObject"), session_(session), object_(object) {}
  Template values;

 protected:
  CK_RV Run(CK_FUNCTION_LIST* f) override {
    return f->C_CopyObject(session_, object_, values.data(), values.size(), &copy_);
  }
  napi_value Result(napi_env env) override { return FromHandle(env, copy_, lib_->handles.objects); }

 private:
  CK_SESSION_HANDLE session_;
  CK_OBJECT_HANDLE object_;
  CK_OBJECT_HANDLE copy_ = CK_INVALID_HANDLE;
};

Napi::Value ModuleWrap::CopyObject(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  CK_SESSION_HANDLE session = SessionArg(info, 0);
  CK_OBJECT_HANDLE object = ObjectArg(info, 1, "object");
  auto job = std::make_unique<CopyObjectJob>(lib_, session, object);
  job->values.Parse(env, Arg(info, 2), "template", true);
  return Job::Queue(info.Env(), std::move(job), session);
}

// -------------------------------------------------------- C_DestroyObject
// One handle or many in one job; every handle is attempted, the first
// failure is reported. A third argument `true` runs it on the loop thread when the session is
// idle (Job::RunHereIfIdle): for session objects of an in-process token, as pkcs11js does.
class DestroyObjectJob : public Job {
 public:
  DestroyObjectJob(std::shared_ptr<Library> lib, CK_SESSION_HANDLE session, std::vector<CK_OBJECT_HANDLE> objects)
      : Job(std::move(lib), "C_DestroyObject"), session_(session), objects_(std::move(objects)) {}

 protected:
  CK_RV Run(CK_FUNCTION_LIST* f) override {
    CK_RV first = CKR_OK;
    for (CK_OBJECT_HANDLE object : objects_) {
      CK_RV rv = f->C_DestroyObject(session_, object);
      if (rv == CKR_OK) lib_->handles.objects.Forget(object);
      if (first == CKR_OK) first = rv;
    }
    return first;
  }

 private:
  CK_SESSION_HANDLE session_;
  std::vector<CK_OBJECT_HANDLE> objects_;
};

Napi::Value ModuleWrap::DestroyObject(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  CK_SESSION_HANDLE session = SessionArg(info, 0);
  napi_value target = Arg(info, 1);
  std::vector<CK_OBJECT_HANDLE> objects;
  if (IsArray(env, target, "object")) {
    objects = ToUlongArray(env, target, "object");
    for (CK_OBJECT_HANDLE& o : objects) o = lib_ ? lib_->handles.objects.ToNative(o) : o;
  } else {
    objects.push_back(ObjectArg(info, 1, "object"));
  }
  const napi_valuetype hereType = TypeOf(env, Arg(info, 2), "here");
  if (hereType != napi_undefined && hereType != napi_boolean) throw Napi::TypeError::New(env, "here must be a boolean");
  const bool here = hereType == napi_boolean && info[2].As<Napi::Boolean>().Value();
  auto job = std::make_unique<DestroyObjectJob>(lib_, session, std::move(objects));
  if (here) return Job::RunHereIfIdle(info.Env(), std::move(job), session);
  return Job::Queue(info.Env(), std::move(job), session);
}

}  // namespace kmu11
