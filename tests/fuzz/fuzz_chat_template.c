/* tokenizer/jinja*.c and chat_template.c: the input is a chat template, parsed and
 * rendered with a fixed conversation (system, user, an assistant tool call, the tool's
 * answer, reasoning content) and tools, as apply_chat_template passes them. */
#include <stdlib.h>
#include <time.h>

#include "../../tokenizer/chat_template.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char base_json[] = "{\"bos_token\": \"<s>\", \"eos_token\": \"</s>\", \"unk_token\": \"<unk>\", "
                                "\"pad_token\": null}";
static const char messages_json[] =
    "[{\"role\": \"system\", \"content\": \"You are terse.\"},"
    " {\"role\": \"user\", \"content\": \"What is 2+2? \\u00e9\\ud83d\\ude00\"},"
    " {\"role\": \"assistant\", \"content\": \"\", \"reasoning_content\": \"add\","
    "  \"tool_calls\": [{\"type\": \"function\", \"id\": \"c1\", \"function\": {\"name\": \"add\","
    "   \"arguments\": {\"a\": 2, \"b\": 2.5, \"c\": [true, null]}}}]},"
    " {\"role\": \"tool\", \"tool_call_id\": \"c1\", \"content\": \"4\"},"
    " {\"role\": \"assistant\", \"content\": \"4\"},"
    " {\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": \"Thanks\"}]}]";
static const char tools_json[] =
    "[{\"type\": \"function\", \"function\": {\"name\": \"add\", \"description\": \"Adds.\","
    " \"parameters\": {\"type\": \"object\", \"properties\": {\"a\": {\"type\": \"number\"}},"
    " \"required\": [\"a\"]}}}]";

static json_t *make_context(void)
{
    json_t *base = json_loads(base_json, 0, NULL), *messages = json_loads(messages_json, 0, NULL);
    json_t *ctx = base && messages ? mp_chat_context(base, messages, 1) : NULL;
    json_decref(base);
    json_decref(messages);
    if (ctx) {
        json_object_set_new(ctx, "tools", json_loads(tools_json, 0, NULL));
        json_object_set_new(ctx, "enable_thinking", json_false());
    }
    return ctx;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mp_chat_template *t;
    mp_error err = {0};
    if (fuzz_check(mp_chat_template_parse((const char *)data, size, "fuzz.jinja", &t, &err), &err) != MP_OK)
        return 0;
    json_t *ctx = make_context();
    struct tm now = {.tm_year = 125, .tm_mon = 6, .tm_mday = 26, .tm_hour = 12};
    char *out = NULL;
    size_t len;
    if (ctx && fuzz_check(mp_chat_template_render(t, ctx, &now, &out, &len, &err), &err) == MP_OK)
        free(out);
    json_decref(ctx);
    mp_chat_template_free(t);
    return 0;
}
