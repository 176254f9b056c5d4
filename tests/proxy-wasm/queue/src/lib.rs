//! The root context registers the shared queue `duet_queue`; every request resolves it by
//! this VM's id and enqueues its path. When the host says the queue is ready, the root context
//! dequeues everything, counting items in the shared-data key `dequeued` and keeping the last
//! one in `last_item`.

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType};

proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| Box::new(Root { queue: 0 }));
}}

struct Root {
    queue: u32,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_vm_start(&mut self, _size: usize) -> bool {
        match self.register_shared_queue("duet_queue") {
            id if id != 0 => {
                self.queue = id;
                true
            }
            _ => false,
        }
    }

    fn on_queue_ready(&mut self, queue_id: u32) {
        let mut n = 0u64;
        let mut last = None;
        while let Ok(Some(item)) = self.dequeue_shared_queue(queue_id) {
            n += 1;
            last = Some(item);
        }
        let (value, _) = self.get_shared_data("dequeued");
        let total = value.and_then(|v| String::from_utf8(v).ok()).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
        self.set_shared_data("dequeued", Some((total + n).to_string().as_bytes()), None).ok();
        if let Some(last) = last {
            self.set_shared_data("last_item", Some(&last), None).ok();
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Enqueue))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Enqueue;

impl Context for Enqueue {}

impl HttpContext for Enqueue {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let vm_id = self.get_property(vec!["plugin_vm_id"]).unwrap_or_default();
        let vm_id = String::from_utf8_lossy(&vm_id).into_owned();
        let path = self.get_http_request_header(":path").unwrap_or_default();
        match self.resolve_shared_queue(&vm_id, "duet_queue") {
            Some(queue) => {
                let status = match self.enqueue_shared_queue(queue, Some(path.as_bytes())) {
                    Ok(()) => "ok".to_owned(),
                    Err(status) => format!("{status:?}"),
                };
                self.add_http_request_header("x-enqueued", &status);
                self.add_http_request_header("x-queue-id", &queue.to_string());
            }
            None => self.add_http_request_header("x-enqueued", "no queue"),
        }
        Action::Continue
    }
}
