/* Firmware logic without the hardware; see estop_app.h. */
#include "estop_app.h"

#include <string.h>

static void note_changes(struct estop_app *app)
{
    const struct estop_board *board = &app->board;

    if (board->relay_open != app->shown_relay_open || board->button_pressed != app->shown_button ||
        board->board_fault != app->shown_fault) {
        app->status_now = 1;
        app->shown_relay_open = board->relay_open;
        app->shown_button = board->button_pressed;
        app->shown_fault = board->board_fault;
    }
}

static void add_decoder_bad_frames(struct estop_app *app)
{
    uint32_t bad = estop_decoder_bad_frames(&app->decoder);
    uint32_t added = bad - app->decoder_bad_seen;

    /* The board's counter wraps at 2^16 like the STATUS field, so truncation is intended. */
    app->board.bad_frames = (uint16_t)(app->board.bad_frames + (uint16_t)added);
    app->decoder_bad_seen = bad;
}

static void handle_frame(void *context, const struct estop_frame *frame)
{
    struct estop_app *app = context;
    struct estop_message message;

    add_decoder_bad_frames(app);
    ++app->frames_received;
    if (estop_decode_message(frame, &message) != ESTOP_DECODE_OK) {
        estop_board_count_bad_frame(&app->board);
        return;
    }
    estop_board_handle(&app->board, &message, frame->seq, app->receive_ms);
    if (message.type == ESTOP_MSG_HELLO) {
        app->status_now = 1;
    }
    note_changes(app);
}

int estop_app_init(struct estop_app *app, const struct estop_app_config *config, uint32_t now_ms,
                   int raw_button_pressed, int raw_fault)
{
    int result;

    memset(app, 0, sizeof(*app));
    result = estop_board_init(&app->board, &config->board, now_ms);
    estop_decoder_init(&app->decoder);
    estop_debounce_init(&app->button, config->button_press_ms, config->button_release_ms,
                        raw_button_pressed);
    estop_debounce_init(&app->fault, config->fault_raise_ms, config->fault_clear_ms, raw_fault);
    if (raw_button_pressed) {
        estop_board_press_button(&app->board, now_ms);
    }
    if (raw_fault) {
        estop_board_set_fault(&app->board, 1, now_ms);
    }
    app->shown_relay_open = app->board.relay_open;
    app->shown_button = app->board.button_pressed;
    app->shown_fault = app->board.board_fault;
    app->status_now = 1;
    app->next_status_ms = now_ms;
    return result;
}

void estop_app_receive(struct estop_app *app, const uint8_t *data, size_t length, uint32_t now_ms)
{
    app->receive_ms = now_ms;
    estop_decoder_feed(&app->decoder, data, length, handle_frame, app);
    add_decoder_bad_frames(app);
}

void estop_app_sample_inputs(struct estop_app *app, int raw_button_pressed, int raw_fault,
                             uint32_t now_ms)
{
    uint8_t pressed = estop_debounce_sample(&app->button, raw_button_pressed, now_ms);
    uint8_t fault = estop_debounce_sample(&app->fault, raw_fault, now_ms);

    if (pressed && !app->board.button_pressed) {
        estop_board_press_button(&app->board, now_ms);
    } else if (!pressed && app->board.button_pressed) {
        estop_board_release_button(&app->board, now_ms);
    }
    if (fault != app->board.board_fault) {
        estop_board_set_fault(&app->board, fault, now_ms);
    }
    note_changes(app);
}

/* Returns 1 when `now_ms` is at or after `deadline_ms` on the wrapping clock. */
static int reached(uint32_t now_ms, uint32_t deadline_ms)
{
    return (uint32_t)(now_ms - deadline_ms) < 0x80000000u;
}

size_t estop_app_poll(struct estop_app *app, uint32_t now_ms, uint8_t *out, size_t capacity)
{
    uint16_t period = app->board.config.status_period_ms;
    struct estop_status status;
    size_t size;

    estop_board_tick(&app->board, now_ms);
    note_changes(app);
    if (!app->status_now && !reached(now_ms, app->next_status_ms)) {
        return 0;
    }

    app->status_now = 0;
    /* Keep a fixed cadence. An early STATUS (after a change or a HELLO) and a loop that fell
     * more than a period behind both restart the cadence from now. */
    if ((uint32_t)(now_ms - app->next_status_ms) < period) {
        app->next_status_ms += period;
    } else {
        app->next_status_ms = now_ms + period;
    }
    if (capacity < ESTOP_STATUS_FRAME_SIZE) {
        ++app->statuses_dropped;
        return 0;
    }
    estop_board_status(&app->board, &status);
    size = estop_encode_status(out, capacity, &status, app->status_seq);
    ++app->status_seq;
    ++app->statuses_sent;
    return size;
}

uint8_t estop_app_relay_open(const struct estop_app *app)
{
    return app->board.relay_open;
}
