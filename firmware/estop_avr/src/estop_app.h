/*
 * The board's firmware logic without the hardware, in portable C: received bytes go
 * through the frame decoder into the board rules, raw input levels through debouncers,
 * and STATUS frames come out on schedule. The AVR main loop and the host simulator in
 * test/ both run this code, so the host tests exercise what the board runs.
 *
 * STATUS is sent every status period, right after each HELLO, and right after any change
 * of relay, button or fault state (including a watchdog expiry found by the periodic tick).
 */
#ifndef ESTOP_APP_H
#define ESTOP_APP_H

#include <stddef.h>
#include <stdint.h>

#include "estop_board.h"
#include "estop_debounce.h"
#include "estop_protocol.h"

struct estop_app_config {
    struct estop_board_config board;
    uint16_t button_press_ms;     /* debounce before a press counts */
    uint16_t button_release_ms;   /* debounce before a release counts */
    uint16_t fault_raise_ms;      /* debounce before a fault counts */
    uint16_t fault_clear_ms;      /* debounce before a cleared fault counts */
};

struct estop_app {
    struct estop_board board;
    struct estop_decoder decoder;
    struct estop_debounce button;
    struct estop_debounce fault;
    uint32_t decoder_bad_seen;    /* decoder bad-frame count already added to the board's */
    uint32_t receive_ms;          /* arrival instant of the bytes being decoded */
    uint32_t next_status_ms;
    uint16_t status_seq;
    uint8_t status_now;
    uint8_t shown_relay_open;     /* relay, button and fault state of the last change check */
    uint8_t shown_button;
    uint8_t shown_fault;
    uint32_t frames_received;
    uint32_t statuses_sent;
    uint32_t statuses_dropped;    /* STATUS frames that did not fit in the transmit buffer */
};

/*
 * Starts the board in its power-on state (relay open, latched). The debouncers start at
 * the raw levels given here, so a button held down at power-on counts at once.
 * Returns 0, or -1 for an invalid board configuration (the relay then stays open).
 */
int estop_app_init(struct estop_app *app, const struct estop_app_config *config, uint32_t now_ms,
                   int raw_button_pressed, int raw_fault);

/* Decodes bytes received at `now_ms` and applies every complete frame to the board. */
void estop_app_receive(struct estop_app *app, const uint8_t *data, size_t length, uint32_t now_ms);

/* Feeds one sample of the button and fault inputs (1 active) taken at `now_ms`. */
void estop_app_sample_inputs(struct estop_app *app, int raw_button_pressed, int raw_fault,
                             uint32_t now_ms);

/*
 * Runs the watchdog check and, when a STATUS is due, writes it to `out` and returns its
 * size. Returns 0 when none is due, or when `capacity` (the free transmit space) is below
 * ESTOP_STATUS_FRAME_SIZE: that STATUS is dropped and counted, as a full UART would.
 */
size_t estop_app_poll(struct estop_app *app, uint32_t now_ms, uint8_t *out, size_t capacity);

/* Returns 1 while the relay must be open (motor power cut), 0 when it may be closed. */
uint8_t estop_app_relay_open(const struct estop_app *app);

#endif
