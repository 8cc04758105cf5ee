/* Board rules; see estop_board.h. */
#include "estop_board.h"

#include <string.h>

int estop_board_config_valid(const struct estop_board_config *config)
{
    return config->watchdog_ms >= ESTOP_WATCHDOG_MS_MIN &&
           config->watchdog_ms <= ESTOP_WATCHDOG_MS_MAX &&
           config->status_period_ms >= ESTOP_STATUS_PERIOD_MS_MIN &&
           config->status_period_ms <= ESTOP_STATUS_PERIOD_MS_MAX;
}

int estop_board_init(struct estop_board *board, const struct estop_board_config *config,
                     uint32_t now_ms)
{
    (void)now_ms;
    memset(board, 0, sizeof(*board));
    board->config = *config;
    board->relay_open = 1;
    board->latched = 1;
    board->cause = ESTOP_CAUSE_POWER_ON;
    board->last_heartbeat_state = ESTOP_HOST_STOP;
    return estop_board_config_valid(config) ? 0 : -1;
}

static void open_relay(struct estop_board *board, uint8_t cause)
{
    board->latched = 1;
    if (!board->relay_open) {
        board->relay_open = 1;
        board->cause = cause;
    }
}

static void close_if_allowed(struct estop_board *board)
{
    if (!board->relay_open || board->latched || board->button_pressed || board->board_fault) {
        return;
    }
    if (!board->heartbeat_fresh || board->last_heartbeat_state != ESTOP_HOST_RUN) {
        return;
    }
    board->relay_open = 0;
    board->cause = ESTOP_CAUSE_NONE;
    board->trip_reason = 0;
}

static void on_heartbeat(struct estop_board *board, uint8_t state, uint16_t seq, uint32_t now_ms)
{
    if (board->has_heartbeat && seq == board->last_heartbeat_seq) {
        /* A repeated frame (a stuck transmitter, a replayed buffer) proves nothing about
         * the host being alive, so it does not feed the watchdog. */
        ++board->duplicate_heartbeats;
        return;
    }
    board->has_heartbeat = 1;
    board->last_heartbeat_seq = seq;
    board->last_heartbeat_state = state;
    board->last_heartbeat_ms = now_ms;
    board->heartbeat_fresh = 1;
    if (state == ESTOP_HOST_STOP) {
        open_relay(board, ESTOP_CAUSE_HOST_STOP);
    } else {
        close_if_allowed(board);
    }
}

static void on_reset_request(struct estop_board *board)
{
    if (board->button_pressed || board->board_fault) {
        ++board->rejected_resets;
        return;
    }
    board->latched = 0;
    close_if_allowed(board);
}

void estop_board_handle(struct estop_board *board, const struct estop_message *message,
                        uint16_t seq, uint32_t now_ms)
{
    estop_board_tick(board, now_ms);
    switch (message->type) {
    case ESTOP_MSG_HEARTBEAT:
        on_heartbeat(board, message->host_state, seq, now_ms);
        break;
    case ESTOP_MSG_TRIP:
        board->trip_reason = message->trip_reason;
        open_relay(board, ESTOP_CAUSE_TRIP);
        break;
    case ESTOP_MSG_RESET_REQUEST:
        on_reset_request(board);
        break;
    case ESTOP_MSG_HELLO:
        /* The frame header carried a version this board speaks, so there is nothing to
         * check. The caller sends a STATUS right away. */
        break;
    default:
        /* A board never acts on a STATUS; count it like any other invalid frame. */
        estop_board_count_bad_frame(board);
        break;
    }
}

void estop_board_count_bad_frame(struct estop_board *board)
{
    ++board->bad_frames;
}

void estop_board_tick(struct estop_board *board, uint32_t now_ms)
{
    /* Unsigned subtraction keeps the comparison right across a clock wrap. */
    if (board->heartbeat_fresh &&
        (uint32_t)(now_ms - board->last_heartbeat_ms) > board->config.watchdog_ms) {
        board->heartbeat_fresh = 0;
        ++board->watchdog_expirations;
        open_relay(board, ESTOP_CAUSE_WATCHDOG);
    }
}

void estop_board_press_button(struct estop_board *board, uint32_t now_ms)
{
    estop_board_tick(board, now_ms);
    board->button_pressed = 1;
    open_relay(board, ESTOP_CAUSE_BUTTON);
}

void estop_board_release_button(struct estop_board *board, uint32_t now_ms)
{
    estop_board_tick(board, now_ms);
    board->button_pressed = 0;
}

void estop_board_set_fault(struct estop_board *board, int fault, uint32_t now_ms)
{
    estop_board_tick(board, now_ms);
    board->board_fault = fault ? 1 : 0;
    if (fault) {
        open_relay(board, ESTOP_CAUSE_BOARD_FAULT);
    }
}

void estop_board_status(const struct estop_board *board, struct estop_status *status)
{
    status->relay_open = board->relay_open;
    status->button_pressed = board->button_pressed;
    status->latched = board->latched;
    status->board_fault = board->board_fault;
    status->cause = board->cause;
    status->trip_reason = board->trip_reason;
    status->watchdog_expirations = board->watchdog_expirations;
    status->bad_frames = board->bad_frames;
    status->heartbeat_seq = board->has_heartbeat ? board->last_heartbeat_seq : 0;
    status->firmware_major = board->config.firmware_major;
    status->firmware_minor = board->config.firmware_minor;
    status->watchdog_ms = board->config.watchdog_ms;
}
