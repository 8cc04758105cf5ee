/* Frame encoder and decoder of the e-stop protocol; see estop_protocol.h. */
#include "estop_protocol.h"

#include <string.h>

static const uint8_t payload_sizes[] = {
    [ESTOP_MSG_HELLO] = 1,
    [ESTOP_MSG_HEARTBEAT] = 1,
    [ESTOP_MSG_TRIP] = 1,
    [ESTOP_MSG_RESET_REQUEST] = 0,
};

uint16_t estop_crc16_update(uint16_t crc, uint8_t byte)
{
    uint8_t bit;

    crc ^= (uint16_t)((unsigned)byte << 8);
    for (bit = 0; bit < 8; ++bit) {
        if (crc & 0x8000u) {
            crc = (uint16_t)(((unsigned)crc << 1) ^ 0x1021u);
        } else {
            crc = (uint16_t)((unsigned)crc << 1);
        }
    }
    return crc;
}

uint16_t estop_crc16(const uint8_t *data, size_t length)
{
    uint16_t crc = 0xFFFFu;
    size_t i;

    for (i = 0; i < length; ++i) {
        crc = estop_crc16_update(crc, data[i]);
    }
    return crc;
}

size_t estop_encode_frame(uint8_t *out, size_t capacity, uint8_t msg_type, uint16_t seq,
                          const uint8_t *payload, uint8_t payload_length)
{
    size_t size = ESTOP_HEADER_SIZE + (size_t)payload_length + ESTOP_CRC_SIZE;
    size_t crc_at = ESTOP_HEADER_SIZE + (size_t)payload_length;
    uint16_t crc;

    if (payload_length > ESTOP_MAX_PAYLOAD || capacity < size) {
        return 0;
    }
    out[0] = ESTOP_SYNC;
    out[1] = ESTOP_PROTOCOL_VERSION;
    out[2] = msg_type;
    out[3] = (uint8_t)(seq & 0xFFu);
    out[4] = (uint8_t)(seq >> 8);
    out[5] = payload_length;
    if (payload_length > 0) {
        memcpy(&out[ESTOP_HEADER_SIZE], payload, payload_length);
    }
    crc = estop_crc16(&out[1], crc_at - 1);
    out[crc_at] = (uint8_t)(crc >> 8);
    out[crc_at + 1] = (uint8_t)(crc & 0xFFu);
    return size;
}

static void put_u16_le(uint8_t *out, uint16_t value)
{
    out[0] = (uint8_t)(value & 0xFFu);
    out[1] = (uint8_t)(value >> 8);
}

void estop_encode_status_payload(uint8_t out[ESTOP_STATUS_PAYLOAD_SIZE],
                                 const struct estop_status *status)
{
    uint8_t flags = 0;

    if (status->relay_open) {
        flags |= ESTOP_FLAG_RELAY_OPEN;
    }
    if (status->button_pressed) {
        flags |= ESTOP_FLAG_BUTTON;
    }
    if (status->latched) {
        flags |= ESTOP_FLAG_LATCHED;
    }
    if (status->board_fault) {
        flags |= ESTOP_FLAG_FAULT;
    }
    out[0] = flags;
    out[1] = status->cause;
    out[2] = status->trip_reason;
    put_u16_le(&out[3], status->watchdog_expirations);
    put_u16_le(&out[5], status->bad_frames);
    put_u16_le(&out[7], status->heartbeat_seq);
    out[9] = status->firmware_major;
    out[10] = status->firmware_minor;
    put_u16_le(&out[11], status->watchdog_ms);
}

size_t estop_encode_status(uint8_t *out, size_t capacity, const struct estop_status *status,
                           uint16_t seq)
{
    uint8_t payload[ESTOP_STATUS_PAYLOAD_SIZE];

    estop_encode_status_payload(payload, status);
    return estop_encode_frame(out, capacity, ESTOP_MSG_STATUS, seq, payload,
                              (uint8_t)ESTOP_STATUS_PAYLOAD_SIZE);
}

enum estop_decode_result estop_decode_message(const struct estop_frame *frame,
                                              struct estop_message *message)
{
    uint8_t expected;

    memset(message, 0, sizeof(*message));
    message->type = frame->msg_type;
    if (frame->msg_type == ESTOP_MSG_STATUS) {
        expected = ESTOP_STATUS_PAYLOAD_SIZE;
    } else if (frame->msg_type >= ESTOP_MSG_HELLO && frame->msg_type <= ESTOP_MSG_RESET_REQUEST) {
        expected = payload_sizes[frame->msg_type];
    } else {
        return ESTOP_DECODE_UNKNOWN_TYPE;
    }
    if (frame->length != expected) {
        return ESTOP_DECODE_BAD_SIZE;
    }

    switch (frame->msg_type) {
    case ESTOP_MSG_HELLO:
        message->protocol_version = frame->payload[0];
        break;
    case ESTOP_MSG_HEARTBEAT:
        if (frame->payload[0] != ESTOP_HOST_STOP && frame->payload[0] != ESTOP_HOST_RUN) {
            return ESTOP_DECODE_BAD_STATE;
        }
        message->host_state = frame->payload[0];
        break;
    case ESTOP_MSG_TRIP:
        message->trip_reason = frame->payload[0];
        break;
    case ESTOP_MSG_STATUS:
        /* A board never acts on a STATUS. Only its stop cause is checked, as protocol.py does. */
        if (frame->payload[1] > ESTOP_CAUSE_BOARD_FAULT) {
            return ESTOP_DECODE_BAD_CAUSE;
        }
        break;
    default:
        /* RESET_REQUEST has no payload. */
        break;
    }
    return ESTOP_DECODE_OK;
}

void estop_decoder_init(struct estop_decoder *decoder)
{
    memset(decoder, 0, sizeof(*decoder));
}

void estop_decoder_reset(struct estop_decoder *decoder)
{
    decoder->buffered = 0;
}

uint32_t estop_decoder_bad_frames(const struct estop_decoder *decoder)
{
    return decoder->stats.bad_crc + decoder->stats.bad_version + decoder->stats.oversized;
}

/*
 * Extracts every complete frame from the buffer and keeps the incomplete rest, with the
 * same decisions in the same order as FrameDecoder.feed in protocol.py. Each decision
 * depends only on bytes at fixed offsets from a sync byte, so scanning after every byte
 * gives the same frames and counters as scanning a whole chunk at once.
 */
static void scan(struct estop_decoder *decoder, estop_frame_handler handler, void *context)
{
    uint8_t *buffer = decoder->buffer;
    size_t size = decoder->buffered;
    size_t position = 0;

    for (;;) {
        size_t start = position;
        size_t length;
        size_t end;
        uint16_t received_crc;
        struct estop_frame frame;

        while (start < size && buffer[start] != ESTOP_SYNC) {
            ++start;
        }
        decoder->stats.garbage_bytes += (uint32_t)(start - position);
        position = start;
        if (size - position < ESTOP_HEADER_SIZE) {
            break;
        }
        if (buffer[position + 1] != ESTOP_PROTOCOL_VERSION) {
            ++decoder->stats.bad_version;
            ++position;
            continue;
        }
        length = buffer[position + 5];
        if (length > ESTOP_MAX_PAYLOAD) {
            ++decoder->stats.oversized;
            ++position;
            continue;
        }
        end = position + ESTOP_HEADER_SIZE + length + ESTOP_CRC_SIZE;
        if (end > size) {
            break;
        }
        received_crc = (uint16_t)(((unsigned)buffer[end - 2] << 8) | buffer[end - 1]);
        if (estop_crc16(&buffer[position + 1], ESTOP_HEADER_SIZE - 1u + length) != received_crc) {
            ++decoder->stats.bad_crc;
            ++position;
            continue;
        }
        frame.msg_type = buffer[position + 2];
        frame.seq = (uint16_t)(buffer[position + 3] | ((unsigned)buffer[position + 4] << 8));
        frame.length = (uint8_t)length;
        memcpy(frame.payload, &buffer[position + ESTOP_HEADER_SIZE], length);
        ++decoder->stats.frames;
        position = end;
        handler(context, &frame);
    }

    if (position > 0) {
        memmove(buffer, &buffer[position], size - position);
        decoder->buffered = (uint8_t)(size - position);
    }
}

void estop_decoder_feed(struct estop_decoder *decoder, const uint8_t *data, size_t length,
                        estop_frame_handler handler, void *context)
{
    size_t i;

    for (i = 0; i < length; ++i) {
        /* scan() leaves at most ESTOP_MAX_FRAME - 1 bytes, so one more byte always fits. */
        decoder->buffer[decoder->buffered++] = data[i];
        scan(decoder, handler, context);
    }
}
