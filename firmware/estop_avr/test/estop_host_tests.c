/*
 * Host-side tests of the portable firmware code, built with the machine's gcc.
 *
 * Usage: estop_host_tests VECTORS
 * VECTORS is the output of gen_vectors.py (byte vectors computed with protocol.py). The
 * program also runs built-in checks of the board rules, the debouncer and the STATUS
 * schedule, prints every failed check, and ends with a line "N passed, N failed".
 * Exit status: 0 when every check passed, 1 when one failed, 2 for unusable input.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "estop_app.h"
#include "estop_board.h"
#include "estop_debounce.h"
#include "estop_protocol.h"

#define MAX_LINE 16384
#define MAX_BYTES 4096
#define MAX_STREAM_FRAMES 256

static unsigned passed;
static unsigned failed;

static void check(int condition, const char *context, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

static void check(int condition, const char *context, const char *format, ...)
{
    va_list arguments;

    if (condition) {
        ++passed;
        return;
    }
    ++failed;
    printf("FAILED %s: ", context);
    va_start(arguments, format);
    vprintf(format, arguments);
    va_end(arguments);
    printf("\n");
}

static void fail_input(unsigned line_number, const char *problem)
{
    fprintf(stderr, "estop_host_tests: vectors line %u: %s\n", line_number, problem);
    exit(2);
}

/* Parses hex text ("-" for empty) into `out`; returns the byte count, or -1 if invalid. */
static long parse_hex(const char *text, uint8_t *out, size_t capacity)
{
    size_t length = strlen(text);
    size_t i;

    if (strcmp(text, "-") == 0) {
        return 0;
    }
    if (length % 2 != 0 || length / 2 > capacity) {
        return -1;
    }
    for (i = 0; i < length / 2; ++i) {
        unsigned value;

        if (sscanf(&text[2 * i], "%2x", &value) != 1) {
            return -1;
        }
        out[i] = (uint8_t)value;
    }
    return (long)(length / 2);
}

static unsigned long parse_number(const char *text, unsigned line_number)
{
    char *end;
    unsigned long value;

    if (text == NULL) {
        fail_input(line_number, "missing field");
    }
    value = strtoul(text, &end, 10);
    if (*end != '\0') {
        fail_input(line_number, "invalid decimal number");
    }
    return value;
}

static long parse_hex_field(const char *text, uint8_t *out, size_t capacity, unsigned line_number)
{
    long length;

    if (text == NULL) {
        fail_input(line_number, "missing hex field");
    }
    length = parse_hex(text, out, capacity);
    if (length < 0) {
        fail_input(line_number, "invalid hex field");
    }
    return length;
}

/* ---- vectors computed with protocol.py ---- */

static void check_crc_vector(unsigned line_number)
{
    static uint8_t data[MAX_BYTES];
    long length = parse_hex_field(strtok(NULL, " "), data, sizeof(data), line_number);
    unsigned long expected = parse_number(strtok(NULL, " "), line_number);
    uint16_t actual = estop_crc16(data, (size_t)length);
    char context[64];

    snprintf(context, sizeof(context), "crc vector line %u", line_number);
    check(actual == expected, context, "CRC 0x%04X, protocol.py 0x%04lX", actual, expected);
}

static void check_frame_vector(unsigned line_number)
{
    uint8_t payload[ESTOP_MAX_PAYLOAD];
    uint8_t expected[ESTOP_MAX_FRAME];
    uint8_t actual[ESTOP_MAX_FRAME];
    unsigned long msg_type = parse_number(strtok(NULL, " "), line_number);
    unsigned long seq = parse_number(strtok(NULL, " "), line_number);
    long payload_length = parse_hex_field(strtok(NULL, " "), payload, sizeof(payload), line_number);
    long expected_length = parse_hex_field(strtok(NULL, " "), expected, sizeof(expected), line_number);
    size_t size = estop_encode_frame(actual, sizeof(actual), (uint8_t)msg_type, (uint16_t)seq,
                                     payload, (uint8_t)payload_length);
    char context[64];

    snprintf(context, sizeof(context), "frame vector line %u", line_number);
    check(size == (size_t)expected_length, context, "size %zu, protocol.py %ld", size, expected_length);
    check(size == (size_t)expected_length && memcmp(actual, expected, size) == 0, context,
          "frame bytes differ from protocol.py");
}

static void check_status_vector(unsigned line_number)
{
    struct estop_status status;
    uint8_t expected[ESTOP_MAX_FRAME];
    uint8_t actual[ESTOP_MAX_FRAME];
    unsigned long seq;
    long expected_length;
    size_t size;
    char context[64];

    status.relay_open = (uint8_t)parse_number(strtok(NULL, " "), line_number);
    status.button_pressed = (uint8_t)parse_number(strtok(NULL, " "), line_number);
    status.latched = (uint8_t)parse_number(strtok(NULL, " "), line_number);
    status.board_fault = (uint8_t)parse_number(strtok(NULL, " "), line_number);
    status.cause = (uint8_t)parse_number(strtok(NULL, " "), line_number);
    status.trip_reason = (uint8_t)parse_number(strtok(NULL, " "), line_number);
    status.watchdog_expirations = (uint16_t)parse_number(strtok(NULL, " "), line_number);
    status.bad_frames = (uint16_t)parse_number(strtok(NULL, " "), line_number);
    status.heartbeat_seq = (uint16_t)parse_number(strtok(NULL, " "), line_number);
    status.firmware_major = (uint8_t)parse_number(strtok(NULL, " "), line_number);
    status.firmware_minor = (uint8_t)parse_number(strtok(NULL, " "), line_number);
    status.watchdog_ms = (uint16_t)parse_number(strtok(NULL, " "), line_number);
    seq = parse_number(strtok(NULL, " "), line_number);
    expected_length = parse_hex_field(strtok(NULL, " "), expected, sizeof(expected), line_number);

    size = estop_encode_status(actual, sizeof(actual), &status, (uint16_t)seq);
    snprintf(context, sizeof(context), "status vector line %u", line_number);
    check(size == (size_t)expected_length, context, "size %zu, protocol.py %ld", size, expected_length);
    check(size == (size_t)expected_length && memcmp(actual, expected, size) == 0, context,
          "STATUS bytes differ from protocol.py");
}

static void check_message_vector(unsigned line_number)
{
    struct estop_frame frame;
    struct estop_message message;
    enum estop_decode_result result;
    const char *verdict;
    unsigned long expected_value;
    unsigned actual_value = 0;
    long payload_length;
    char context[64];

    frame.msg_type = (uint8_t)parse_number(strtok(NULL, " "), line_number);
    frame.seq = (uint16_t)parse_number(strtok(NULL, " "), line_number);
    payload_length = parse_hex_field(strtok(NULL, " "), frame.payload, sizeof(frame.payload), line_number);
    frame.length = (uint8_t)payload_length;
    verdict = strtok(NULL, " ");
    expected_value = parse_number(strtok(NULL, " "), line_number);
    if (verdict == NULL || (strcmp(verdict, "ok") != 0 && strcmp(verdict, "error") != 0)) {
        fail_input(line_number, "message verdict is neither ok nor error");
    }

    result = estop_decode_message(&frame, &message);
    snprintf(context, sizeof(context), "message vector line %u", line_number);
    if (strcmp(verdict, "error") == 0) {
        check(result != ESTOP_DECODE_OK, context, "type 0x%02X accepted, protocol.py rejects it",
              frame.msg_type);
        return;
    }
    check(result == ESTOP_DECODE_OK, context, "type 0x%02X rejected with %d, protocol.py accepts it",
          frame.msg_type, (int)result);
    if (frame.msg_type == ESTOP_MSG_HELLO) {
        actual_value = message.protocol_version;
    } else if (frame.msg_type == ESTOP_MSG_HEARTBEAT) {
        actual_value = message.host_state;
    } else if (frame.msg_type == ESTOP_MSG_TRIP) {
        actual_value = message.trip_reason;
    }
    check(actual_value == expected_value, context, "value %u, protocol.py %lu", actual_value,
          expected_value);
}

struct collected_frames {
    struct estop_frame frames[MAX_STREAM_FRAMES];
    size_t count;
};

static void collect_frame(void *context, const struct estop_frame *frame)
{
    struct collected_frames *collected = context;

    if (collected->count < MAX_STREAM_FRAMES) {
        collected->frames[collected->count] = *frame;
    }
    ++collected->count;
}

static void check_stream_frame(const struct estop_frame *actual, const char *expected_text,
                               const char *context, size_t index, unsigned line_number)
{
    char copy[3 * ESTOP_MAX_PAYLOAD + 32];
    uint8_t payload[ESTOP_MAX_PAYLOAD];
    char *seq_text;
    char *payload_text;
    long payload_length;

    /* expected_text is TYPE:SEQ:PAYLOAD */
    snprintf(copy, sizeof(copy), "%s", expected_text);
    seq_text = strchr(copy, ':');
    payload_text = seq_text == NULL ? NULL : strchr(seq_text + 1, ':');
    if (payload_text == NULL) {
        fail_input(line_number, "stream frame is not TYPE:SEQ:PAYLOAD");
    }
    *seq_text++ = '\0';
    *payload_text++ = '\0';
    payload_length = parse_hex_field(payload_text, payload, sizeof(payload), line_number);
    check(actual->msg_type == parse_number(copy, line_number), context,
          "frame %zu type 0x%02X, protocol.py %s", index, actual->msg_type, copy);
    check(actual->seq == parse_number(seq_text, line_number), context,
          "frame %zu seq %u, protocol.py %s", index, actual->seq, seq_text);
    check(actual->length == payload_length && memcmp(actual->payload, payload, actual->length) == 0,
          context, "frame %zu payload differs from protocol.py", index);
}

static void check_stream_vector(unsigned line_number)
{
    static uint8_t data[MAX_BYTES];
    static struct collected_frames collected;
    struct estop_decoder decoder;
    const struct estop_decoder_stats *stats = &decoder.stats;
    long length = parse_hex_field(strtok(NULL, " "), data, sizeof(data), line_number);
    unsigned long frames = parse_number(strtok(NULL, " "), line_number);
    unsigned long bad_crc = parse_number(strtok(NULL, " "), line_number);
    unsigned long bad_version = parse_number(strtok(NULL, " "), line_number);
    unsigned long oversized = parse_number(strtok(NULL, " "), line_number);
    unsigned long garbage = parse_number(strtok(NULL, " "), line_number);
    char context[64];
    size_t index;

    collected.count = 0;
    estop_decoder_init(&decoder);
    estop_decoder_feed(&decoder, data, (size_t)length, collect_frame, &collected);

    snprintf(context, sizeof(context), "stream vector line %u", line_number);
    check(collected.count == frames, context, "%zu frames, protocol.py %lu", collected.count, frames);
    check(stats->frames == frames, context, "frames counter %" PRIu32 ", protocol.py %lu",
          stats->frames, frames);
    check(stats->bad_crc == bad_crc, context, "bad CRC %" PRIu32 ", protocol.py %lu", stats->bad_crc,
          bad_crc);
    check(stats->bad_version == bad_version, context, "bad version %" PRIu32 ", protocol.py %lu",
          stats->bad_version, bad_version);
    check(stats->oversized == oversized, context, "oversized %" PRIu32 ", protocol.py %lu",
          stats->oversized, oversized);
    check(stats->garbage_bytes == garbage, context, "garbage bytes %" PRIu32 ", protocol.py %lu",
          stats->garbage_bytes, garbage);
    check(decoder.buffered < ESTOP_MAX_FRAME, context, "decoder keeps %u bytes", decoder.buffered);
    for (index = 0; index < collected.count && index < MAX_STREAM_FRAMES; ++index) {
        const char *expected_text = strtok(NULL, " ");

        if (expected_text == NULL) {
            break;
        }
        check_stream_frame(&collected.frames[index], expected_text, context, index, line_number);
    }
}

static void run_vectors(const char *path)
{
    static char line[MAX_LINE];
    FILE *file = fopen(path, "r");
    unsigned line_number = 0;
    unsigned vectors = 0;

    if (file == NULL) {
        fprintf(stderr, "estop_host_tests: cannot open vectors file %s\n", path);
        exit(2);
    }
    while (fgets(line, sizeof(line), file) != NULL) {
        char *kind;

        ++line_number;
        if (strchr(line, '\n') == NULL && !feof(file)) {
            fail_input(line_number, "line longer than the harness buffer");
        }
        line[strcspn(line, "\r\n")] = '\0';
        kind = strtok(line, " ");
        if (kind == NULL) {
            continue;
        }
        ++vectors;
        if (strcmp(kind, "crc") == 0) {
            check_crc_vector(line_number);
        } else if (strcmp(kind, "frame") == 0) {
            check_frame_vector(line_number);
        } else if (strcmp(kind, "status") == 0) {
            check_status_vector(line_number);
        } else if (strcmp(kind, "message") == 0) {
            check_message_vector(line_number);
        } else if (strcmp(kind, "stream") == 0) {
            check_stream_vector(line_number);
        } else {
            fail_input(line_number, "unknown vector kind");
        }
    }
    fclose(file);
    if (vectors == 0) {
        fprintf(stderr, "estop_host_tests: vectors file %s has no vectors\n", path);
        exit(2);
    }
    printf("%u vectors from %s\n", vectors, path);
}

/* ---- built-in checks ---- */

static void test_crc_check_value(void)
{
    const uint8_t text[] = "123456789";

    check(estop_crc16(text, 9) == 0x29B1u, "crc check value", "CRC of \"123456789\" is 0x%04X",
          estop_crc16(text, 9));
}

static void test_encoder_limits(void)
{
    uint8_t out[ESTOP_MAX_FRAME + 8];
    uint8_t payload[ESTOP_MAX_PAYLOAD + 1] = {0};

    check(estop_encode_frame(out, sizeof(out), 0x02, 1, payload, ESTOP_MAX_PAYLOAD + 1) == 0,
          "encoder limits", "a 33-byte payload was encoded");
    check(estop_encode_frame(out, ESTOP_MAX_FRAME, 0x02, 1, payload, ESTOP_MAX_PAYLOAD) ==
              ESTOP_MAX_FRAME,
          "encoder limits", "a 32-byte payload did not fill a 40-byte frame");
    check(estop_encode_frame(out, 8, 0x02, 1, payload, 1) == 0, "encoder limits",
          "a 9-byte frame was written into 8 bytes");
}

static void count_frame(void *context, const struct estop_frame *frame)
{
    (void)frame;
    ++*(unsigned *)context;
}

static void test_decoder_bounded_under_noise(void)
{
    struct estop_decoder decoder;
    unsigned frames = 0;
    unsigned max_buffered = 0;
    uint32_t state = 12345;
    unsigned i;

    estop_decoder_init(&decoder);
    for (i = 0; i < 200000; ++i) {
        uint8_t byte;

        /* xorshift32, with many sync and version bytes so that headers keep forming. */
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        byte = (uint8_t)state;
        if ((state >> 8) % 4 == 0) {
            byte = ESTOP_SYNC;
        } else if ((state >> 8) % 4 == 1) {
            byte = ESTOP_PROTOCOL_VERSION;
        }
        estop_decoder_feed(&decoder, &byte, 1, count_frame, &frames);
        if (decoder.buffered > max_buffered) {
            max_buffered = decoder.buffered;
        }
    }
    check(max_buffered < ESTOP_MAX_FRAME, "decoder under noise", "buffered up to %u bytes",
          max_buffered);
}

/* Board driver like the one in test_estop_board.py: heartbeats with increasing seq. */
struct driver {
    struct estop_board board;
    uint16_t seq;
};

static void driver_init(struct driver *driver)
{
    struct estop_board_config config = {100, 20, 1, 0};

    driver->seq = 0;
    estop_board_init(&driver->board, &config, 0);
}

static void driver_send(struct driver *driver, uint8_t type, uint8_t value, uint32_t now_ms)
{
    struct estop_message message;

    memset(&message, 0, sizeof(message));
    message.type = type;
    message.host_state = value;
    message.trip_reason = value;
    ++driver->seq;
    estop_board_handle(&driver->board, &message, driver->seq, now_ms);
}

static void driver_heartbeat(struct driver *driver, uint32_t now_ms)
{
    driver_send(driver, ESTOP_MSG_HEARTBEAT, ESTOP_HOST_RUN, now_ms);
}

static void driver_run_closed(struct driver *driver)
{
    driver_heartbeat(driver, 10);
    driver_send(driver, ESTOP_MSG_RESET_REQUEST, 0, 20);
}

static void test_board_rules(void)
{
    struct driver driver;
    struct estop_board *board = &driver.board;
    struct estop_board_config invalid = {4, 20, 1, 0};
    struct estop_message duplicate = {ESTOP_MSG_HEARTBEAT, 0, ESTOP_HOST_RUN, 0};
    uint32_t now;

    driver_init(&driver);
    check(board->relay_open && board->latched && board->cause == ESTOP_CAUSE_POWER_ON,
          "board power-on", "relay %u latched %u cause %u", board->relay_open, board->latched,
          board->cause);

    for (now = 0; now < 100; now += 10) {
        driver_heartbeat(&driver, now);
    }
    check(board->relay_open, "heartbeats alone", "relay closed without a reset");

    driver_init(&driver);
    driver_run_closed(&driver);
    check(!board->relay_open && !board->latched, "reset with run heartbeats",
          "relay %u latched %u", board->relay_open, board->latched);

    driver_init(&driver);
    driver_send(&driver, ESTOP_MSG_RESET_REQUEST, 0, 0);
    check(board->relay_open, "reset before heartbeats", "relay closed without a heartbeat");
    driver_heartbeat(&driver, 10);
    check(!board->relay_open, "reset before heartbeats", "first run heartbeat left the relay open");

    /* The watchdog expires strictly after the period: the last heartbeat came at 10 ms. */
    driver_init(&driver);
    driver_run_closed(&driver);
    estop_board_tick(board, 110);
    check(!board->relay_open, "watchdog boundary", "relay opened exactly at the period");
    estop_board_tick(board, 111);
    check(board->relay_open && board->cause == ESTOP_CAUSE_WATCHDOG, "watchdog expiry",
          "relay %u cause %u", board->relay_open, board->cause);
    check(board->watchdog_expirations == 1, "watchdog expiry", "%u expirations",
          board->watchdog_expirations);
    estop_board_tick(board, 5000);
    check(board->watchdog_expirations == 1, "watchdog expiry counted once", "%u expirations",
          board->watchdog_expirations);

    driver_init(&driver);
    driver_run_closed(&driver);
    driver_heartbeat(&driver, 500);
    check(board->relay_open && board->cause == ESTOP_CAUSE_WATCHDOG, "late heartbeat",
          "relay %u cause %u", board->relay_open, board->cause);

    driver_init(&driver);
    driver_run_closed(&driver);
    driver_heartbeat(&driver, 30);
    for (now = 40; now < 230; now += 10) {
        estop_board_handle(board, &duplicate, driver.seq, now);
    }
    check(board->relay_open, "duplicate heartbeats", "repeated seq fed the watchdog");
    check(board->duplicate_heartbeats == 19, "duplicate heartbeats", "%u duplicates counted",
          board->duplicate_heartbeats);

    driver_init(&driver);
    driver_run_closed(&driver);
    driver_send(&driver, ESTOP_MSG_TRIP, 4, 30);
    check(board->relay_open && board->cause == ESTOP_CAUSE_TRIP && board->trip_reason == 4, "trip",
          "relay %u cause %u reason %u", board->relay_open, board->cause, board->trip_reason);

    driver_init(&driver);
    driver_run_closed(&driver);
    driver_send(&driver, ESTOP_MSG_HEARTBEAT, ESTOP_HOST_STOP, 30);
    check(board->relay_open && board->cause == ESTOP_CAUSE_HOST_STOP, "stop heartbeat",
          "relay %u cause %u", board->relay_open, board->cause);

    driver_init(&driver);
    driver_run_closed(&driver);
    estop_board_press_button(board, 30);
    driver_heartbeat(&driver, 40);
    estop_board_release_button(board, 50);
    driver_heartbeat(&driver, 60);
    check(board->relay_open && board->latched, "release alone", "relay %u latched %u",
          board->relay_open, board->latched);

    driver_init(&driver);
    driver_run_closed(&driver);
    estop_board_press_button(board, 30);
    driver_send(&driver, ESTOP_MSG_RESET_REQUEST, 0, 40);
    driver_heartbeat(&driver, 50);
    check(board->relay_open && board->rejected_resets == 1, "reset while pressed",
          "relay %u rejected resets %u", board->relay_open, board->rejected_resets);
    estop_board_release_button(board, 60);
    driver_heartbeat(&driver, 70);
    driver_send(&driver, ESTOP_MSG_RESET_REQUEST, 0, 80);
    check(!board->relay_open, "reset after release", "relay stayed open");

    driver_init(&driver);
    driver_run_closed(&driver);
    estop_board_set_fault(board, 1, 30);
    driver_heartbeat(&driver, 40);
    driver_send(&driver, ESTOP_MSG_RESET_REQUEST, 0, 50);
    check(board->relay_open && board->board_fault && board->cause == ESTOP_CAUSE_BOARD_FAULT,
          "fault blocks reset", "relay %u fault %u cause %u", board->relay_open, board->board_fault,
          board->cause);

    driver_init(&driver);
    driver_run_closed(&driver);
    driver_send(&driver, ESTOP_MSG_HELLO, 1, 30);
    check(!board->relay_open, "hello", "HELLO opened the relay");
    driver_send(&driver, ESTOP_MSG_STATUS, 0, 40);
    check(board->bad_frames == 1, "status sent to board", "%u bad frames", board->bad_frames);

    check(estop_board_init(board, &invalid, 0) == -1, "invalid config", "watchdog 4 ms accepted");
    check(board->relay_open, "invalid config", "relay closed after an invalid config");
}

static void test_debounce(void)
{
    struct estop_debounce debounce;

    estop_debounce_init(&debounce, 2, 20, 0);
    check(estop_debounce_sample(&debounce, 1, 100) == 0, "debounce press", "active after 0 ms");
    check(estop_debounce_sample(&debounce, 1, 101) == 0, "debounce press", "active after 1 ms");
    check(estop_debounce_sample(&debounce, 1, 102) == 1, "debounce press", "inactive after 2 ms");
    check(estop_debounce_sample(&debounce, 0, 110) == 1, "debounce release", "released at once");
    check(estop_debounce_sample(&debounce, 1, 115) == 1, "debounce bounce", "bounce changed state");
    check(estop_debounce_sample(&debounce, 0, 120) == 1, "debounce release", "released at 0 ms");
    check(estop_debounce_sample(&debounce, 0, 139) == 1, "debounce release", "released after 19 ms");
    check(estop_debounce_sample(&debounce, 0, 140) == 0, "debounce release", "held after 20 ms");

    estop_debounce_init(&debounce, 0, 0, 1);
    check(estop_debounce_sample(&debounce, 0, 5) == 0, "debounce zero", "zero time did not follow");
}

static void test_app_schedule(void)
{
    struct estop_app app;
    struct estop_app_config config = {{100, 20, 1, 0}, 2, 20, 2, 50};
    uint8_t out[ESTOP_MAX_FRAME];
    const uint8_t protocol_version = ESTOP_PROTOCOL_VERSION;
    uint8_t hello_frame[ESTOP_MAX_FRAME];
    size_t hello_size;
    unsigned sent = 0;
    uint32_t now;

    estop_app_init(&app, &config, 0, 0, 0);
    check(estop_app_poll(&app, 0, out, sizeof(out)) == ESTOP_STATUS_FRAME_SIZE, "app schedule",
          "no STATUS at power-on");
    for (now = 1; now <= 1000; ++now) {
        if (estop_app_poll(&app, now, out, sizeof(out)) > 0) {
            ++sent;
        }
    }
    check(sent == 50, "app schedule", "%u STATUS frames in 1000 ms at a 20 ms period", sent);

    hello_size = estop_encode_frame(hello_frame, sizeof(hello_frame), ESTOP_MSG_HELLO, 0,
                                    &protocol_version, 1);
    estop_app_receive(&app, hello_frame, hello_size, 1005);
    check(estop_app_poll(&app, 1005, out, sizeof(out)) > 0, "app hello", "no STATUS after HELLO");

    check(estop_app_poll(&app, 1025, out, 4) == 0 && app.statuses_dropped == 1, "app full tx",
          "STATUS written into 4 bytes, %" PRIu32 " dropped", app.statuses_dropped);

    estop_app_sample_inputs(&app, 1, 0, 1030);
    estop_app_sample_inputs(&app, 1, 0, 1032);
    check(app.board.button_pressed, "app button", "press not seen after 2 ms");
    check(estop_app_poll(&app, 1032, out, sizeof(out)) > 0, "app button", "no STATUS after press");
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: estop_host_tests VECTORS (the output of gen_vectors.py)\n");
        return 2;
    }
    run_vectors(argv[1]);
    test_crc_check_value();
    test_encoder_limits();
    test_decoder_bounded_under_noise();
    test_board_rules();
    test_debounce();
    test_app_schedule();
    printf("%u passed, %u failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
