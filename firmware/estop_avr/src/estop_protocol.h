/*
 * Frames of the e-stop board's serial protocol, in portable C (no AVR headers).
 *
 * A frame is
 *     sync(0xA5) version(1) type seq(u16 LE) length(u8) payload[length] crc(u16 BE)
 * and the CRC is CRC-16/CCITT-FALSE (polynomial 0x1021, initial value 0xFFFF, no
 * reflection, no final XOR) over every byte from `version` to the end of the payload.
 * This file mirrors nc_safety/estop/protocol.py byte for byte; docs/estop_protocol.md
 * gives the payload layout of each message type.
 */
#ifndef ESTOP_PROTOCOL_H
#define ESTOP_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

#define ESTOP_SYNC 0xA5u
#define ESTOP_PROTOCOL_VERSION 1u
#define ESTOP_HEADER_SIZE 6u
#define ESTOP_CRC_SIZE 2u
#define ESTOP_MAX_PAYLOAD 32u
#define ESTOP_MAX_FRAME (ESTOP_HEADER_SIZE + ESTOP_MAX_PAYLOAD + ESTOP_CRC_SIZE)
#define ESTOP_STATUS_PAYLOAD_SIZE 13u
#define ESTOP_STATUS_FRAME_SIZE (ESTOP_HEADER_SIZE + ESTOP_STATUS_PAYLOAD_SIZE + ESTOP_CRC_SIZE)

/* Message type byte: host-to-board types are below 0x80, board-to-host types above. */
enum estop_msg_type {
    ESTOP_MSG_HELLO = 0x01,
    ESTOP_MSG_HEARTBEAT = 0x02,
    ESTOP_MSG_TRIP = 0x03,
    ESTOP_MSG_RESET_REQUEST = 0x04,
    ESTOP_MSG_STATUS = 0x81
};

/* Host state carried by every heartbeat: a stop heartbeat opens the relay. */
enum estop_host_state {
    ESTOP_HOST_STOP = 0,
    ESTOP_HOST_RUN = 1
};

/* Cause of the most recent relay opening; STATUS reports it until the relay closes again. */
enum estop_stop_cause {
    ESTOP_CAUSE_NONE = 0,
    ESTOP_CAUSE_POWER_ON = 1,
    ESTOP_CAUSE_WATCHDOG = 2,
    ESTOP_CAUSE_TRIP = 3,
    ESTOP_CAUSE_HOST_STOP = 4,
    ESTOP_CAUSE_BUTTON = 5,
    ESTOP_CAUSE_BOARD_FAULT = 6
};

/* Bits of the STATUS flags byte. */
#define ESTOP_FLAG_RELAY_OPEN 0x01u
#define ESTOP_FLAG_BUTTON 0x02u
#define ESTOP_FLAG_LATCHED 0x04u
#define ESTOP_FLAG_FAULT 0x08u

/* Result of decoding a frame's payload into a message. */
enum estop_decode_result {
    ESTOP_DECODE_OK = 0,
    ESTOP_DECODE_UNKNOWN_TYPE,
    ESTOP_DECODE_BAD_SIZE,
    ESTOP_DECODE_BAD_STATE,   /* HEARTBEAT state neither 0 (stop) nor 1 (run) */
    ESTOP_DECODE_BAD_CAUSE    /* STATUS stop cause above ESTOP_CAUSE_BOARD_FAULT */
};

/* One frame whose version, length and CRC checked out; the payload is not yet interpreted. */
struct estop_frame {
    uint8_t msg_type;
    uint16_t seq;
    uint8_t length;
    uint8_t payload[ESTOP_MAX_PAYLOAD];
};

/* A decoded message. Only the field of `type` is meaningful. */
struct estop_message {
    uint8_t type;                 /* an enum estop_msg_type value */
    uint8_t protocol_version;     /* HELLO */
    uint8_t host_state;           /* HEARTBEAT: an enum estop_host_state value */
    uint8_t trip_reason;          /* TRIP */
};

/* STATUS content, field by field as in the 13-byte payload. */
struct estop_status {
    uint8_t relay_open;
    uint8_t button_pressed;
    uint8_t latched;
    uint8_t board_fault;
    uint8_t cause;                /* an enum estop_stop_cause value */
    uint8_t trip_reason;          /* reason code of the last TRIP, 0 when none */
    uint16_t watchdog_expirations;
    uint16_t bad_frames;
    uint16_t heartbeat_seq;       /* sequence number of the last heartbeat that fed the watchdog */
    uint8_t firmware_major;
    uint8_t firmware_minor;
    uint16_t watchdog_ms;
};

/* Counters of a decoder since it was initialised; they wrap at 2^32. */
struct estop_decoder_stats {
    uint32_t frames;
    uint32_t bad_crc;
    uint32_t bad_version;
    uint32_t oversized;       /* headers whose length field exceeds ESTOP_MAX_PAYLOAD */
    uint32_t garbage_bytes;   /* bytes skipped while searching for a sync byte */
};

/* Called once for every valid frame the decoder completes, in arrival order. */
typedef void (*estop_frame_handler)(void *context, const struct estop_frame *frame);

/*
 * Incremental decoder. After a bad CRC, an unknown version or an oversized length field
 * it restarts its search one byte after that sync byte, so a valid frame right after
 * garbage or a truncated frame is still found. Between calls the buffer contains at most
 * one partial frame (at most ESTOP_MAX_FRAME - 1 bytes).
 */
struct estop_decoder {
    uint8_t buffer[ESTOP_MAX_FRAME];
    uint8_t buffered;
    struct estop_decoder_stats stats;
};

/* Returns the CRC-16/CCITT-FALSE of `data` (check value 0x29B1 for "123456789"). */
uint16_t estop_crc16(const uint8_t *data, size_t length);

/* Continues a CRC-16/CCITT-FALSE with one more byte; start from 0xFFFF. */
uint16_t estop_crc16_update(uint16_t crc, uint8_t byte);

/*
 * Writes one frame to `out` and returns its size in bytes, or 0 when `payload_length`
 * exceeds ESTOP_MAX_PAYLOAD or `capacity` is too small (nothing is written then).
 */
size_t estop_encode_frame(uint8_t *out, size_t capacity, uint8_t msg_type, uint16_t seq,
                          const uint8_t *payload, uint8_t payload_length);

/* Writes the 13-byte STATUS payload of `status` to `out`. */
void estop_encode_status_payload(uint8_t out[ESTOP_STATUS_PAYLOAD_SIZE],
                                 const struct estop_status *status);

/* Writes a complete STATUS frame; returns its size, or 0 when `capacity` is too small. */
size_t estop_encode_status(uint8_t *out, size_t capacity, const struct estop_status *status,
                           uint16_t seq);

/* Interprets a frame's payload with the same checks as protocol.decode_message. */
enum estop_decode_result estop_decode_message(const struct estop_frame *frame,
                                              struct estop_message *message);

void estop_decoder_init(struct estop_decoder *decoder);

/* Drops a partial frame, for example after a UART error burst. Counters stay. */
void estop_decoder_reset(struct estop_decoder *decoder);

/* Adds received bytes; calls `handler` for each frame they complete, in order. */
void estop_decoder_feed(struct estop_decoder *decoder, const uint8_t *data, size_t length,
                        estop_frame_handler handler, void *context);

/* Sum of the decoder's bad CRC, bad version and oversized counters (wraps at 2^32). */
uint32_t estop_decoder_bad_frames(const struct estop_decoder *decoder);

#endif
