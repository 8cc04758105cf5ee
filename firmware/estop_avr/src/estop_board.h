/*
 * The e-stop board's rules as a state machine driven by the caller's millisecond clock,
 * in portable C (no AVR headers). It mirrors nc_safety/estop/board.py:
 *
 * - at power-on the relay is open and latched (cause power-on);
 * - the relay opens, and the board latches, when no valid heartbeat arrives within the
 *   watchdog period, on TRIP, on a heartbeat with state stop, on the button and on a
 *   board fault;
 * - it closes only when the button is up, no fault is present, a RESET_REQUEST released
 *   the latch (ignored while the button is pressed or a fault is present), and the most
 *   recent heartbeat is fresh and has state run.
 *
 * Times are milliseconds on a free-running uint32_t clock; every comparison uses the
 * difference of two instants, so the clock may wrap (every 49.7 days).
 */
#ifndef ESTOP_BOARD_H
#define ESTOP_BOARD_H

#include <stdint.h>

#include "estop_protocol.h"

/* Accepted ranges, the same as BoardConfig in board.py. */
#define ESTOP_WATCHDOG_MS_MIN 5u
#define ESTOP_WATCHDOG_MS_MAX 60000u
#define ESTOP_STATUS_PERIOD_MS_MIN 1u
#define ESTOP_STATUS_PERIOD_MS_MAX 10000u

struct estop_board_config {
    uint16_t watchdog_ms;       /* maximum gap between valid heartbeats before the relay opens */
    uint16_t status_period_ms;  /* interval between STATUS frames */
    uint8_t firmware_major;
    uint8_t firmware_minor;
};

struct estop_board {
    struct estop_board_config config;
    uint8_t relay_open;
    uint8_t latched;
    uint8_t cause;                   /* an enum estop_stop_cause value */
    uint8_t button_pressed;
    uint8_t board_fault;
    uint8_t trip_reason;
    uint16_t watchdog_expirations;   /* wraps at 2^16, as STATUS reports it */
    uint16_t bad_frames;             /* wraps at 2^16, as STATUS reports it */
    uint16_t rejected_resets;
    uint16_t duplicate_heartbeats;
    uint8_t has_heartbeat;           /* set once a heartbeat arrived, so last_heartbeat_seq is valid */
    uint16_t last_heartbeat_seq;
    uint8_t last_heartbeat_state;    /* an enum estop_host_state value */
    uint8_t heartbeat_fresh;         /* the watchdog runs only while this is set */
    uint32_t last_heartbeat_ms;
};

/* Returns 1 when every field of `config` is within its accepted range, else 0. */
int estop_board_config_valid(const struct estop_board_config *config);

/* Puts the board in its power-on state. Returns 0, or -1 for an invalid `config`. */
int estop_board_init(struct estop_board *board, const struct estop_board_config *config,
                     uint32_t now_ms);

/* Applies one message received in a valid frame with sequence number `seq`. */
void estop_board_handle(struct estop_board *board, const struct estop_message *message,
                        uint16_t seq, uint32_t now_ms);

/* Records a frame dropped for its CRC, version, length or payload. */
void estop_board_count_bad_frame(struct estop_board *board);

/* Opens the relay if the watchdog period passed without a valid heartbeat. */
void estop_board_tick(struct estop_board *board, uint32_t now_ms);

void estop_board_press_button(struct estop_board *board, uint32_t now_ms);

/* Releases the button. The relay stays open: only a reset releases the latch. */
void estop_board_release_button(struct estop_board *board, uint32_t now_ms);

/* Raises or clears a board fault. */
void estop_board_set_fault(struct estop_board *board, int fault, uint32_t now_ms);

void estop_board_status(const struct estop_board *board, struct estop_status *status);

#endif
